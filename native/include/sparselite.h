/* sparselite C API: load a verified .slite model and run it.
 *
 * Every call returns a status; on error the model keeps a message readable with
 * sl_model_last_error(). There is no global state: separate models may run on
 * separate threads. One model serves one thread at a time: writing inputs, running and reading
 * outputs is a sequence only the caller can make atomic, so serialise calls on a shared model
 * (the Python API does) or give each thread its own; a run or resize entered while another
 * thread is inside one returns SL_ERROR_BUSY and touches nothing. The block between SL_CDEF_BEGIN and SL_CDEF_END is fed to
 * cffi as is, so it holds plain declarations only. */
#ifndef SPARSELITE_H
#define SPARSELITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SL_CDEF_BEGIN */
typedef enum {
  SL_OK = 0,
  SL_ERROR_INVALID_ARGUMENT = 1, /* a caller's argument is wrong (index, size, NULL) */
  SL_ERROR_INVALID_MODEL = 2,    /* the .slite bytes fail verification */
  SL_ERROR_UNSUPPORTED = 3,      /* valid file, but a feature this runtime lacks */
  SL_ERROR_OUT_OF_MEMORY = 4,
  SL_ERROR_IO = 5,
  SL_ERROR_STATE = 6,            /* call made in the wrong order (e.g. run before load) */
  SL_ERROR_BUSY = 7              /* another thread is running or resizing this model (no message) */
} sl_status_t;

typedef enum {
  SL_DTYPE_FLOAT32 = 0,
  SL_DTYPE_FLOAT16 = 1,
  SL_DTYPE_INT32 = 2,
  SL_DTYPE_INT64 = 3,
  SL_DTYPE_UINT16 = 4,
  SL_DTYPE_UINT32 = 5,
  SL_DTYPE_BOOL = 6 /* one byte, 0 or 1 */
} sl_dtype_t;

#define SL_MAX_RANK 8
#define SL_DEFAULT_MEMORY_LIMIT 2147483648

typedef struct {
  const char* name;
  sl_dtype_t dtype;
  int32_t rank;
  int32_t shape[8];       /* current (after sl_model_resize_input) */
  size_t num_bytes;       /* of the current shape */
  uint32_t dynamic_axes;  /* bit d: axis d is a dynamic dimension (a sequence length) */
  int32_t max_shape[8];   /* what the model was converted and planned for */
} sl_tensor_info_t;

typedef struct sl_model sl_model_t;

/* Instruction-set bits: what a CPU offers and what a kernel needs. */
typedef enum {
  SL_ISA_SCALAR = 0,
  SL_ISA_SSE2 = 1,
  SL_ISA_AVX2_FMA = 2,
  SL_ISA_NEON = 4,
  SL_ISA_WASM_SIMD128 = 8,
  SL_ISA_AVX512 = 16, /* AVX-512F (with AVX2 and FMA) */
  SL_ISA_WASM_RELAXED_SIMD = 32, /* WebAssembly relaxed SIMD (with SIMD128): the relaxed build */
  SL_ISA_NEON_FP16 = 64, /* ARMv8.2-A half-precision arithmetic (FEAT_FP16), with NEON */
  SL_ISA_NEON_INORDER = 128 /* NEON on in-order cores (Cortex-A53/A55 class): kernels scheduled for them */
} sl_isa_t;

/* The SL_ISA_* bits of this CPU (and build). */
uint32_t sl_cpu_isa(void);

/* The kernel registry of this build, index 0..sl_kernel_count() - 1: each microkernel's name
 * (as profiles show it; NULL past the end) and the SL_ISA_* bits it needs. */
int32_t sl_kernel_count(void);
const char* sl_kernel_name(int32_t index);
uint32_t sl_kernel_isa(int32_t index);

/* The format versions this runtime reads. */
uint32_t sl_format_version(void);
const char* sl_version_string(void);

/* NULL only when out of memory. */
sl_model_t* sl_model_new(void);
void sl_model_free(sl_model_t* model);
const char* sl_model_last_error(const sl_model_t* model);

/* copy != 0 keeps a private copy (counted against the memory limit); copy == 0 is the
 * zero-copy path: the caller keeps data alive and unchanged, 64-byte aligned (else it is copied),
 * and weights are used in place. */
sl_status_t sl_model_load_buffer(sl_model_t* model, const void* data, size_t size, int copy);
/* Reads the whole file into the model's memory (counted against the memory limit) rather than
 * mapping it: a file truncated or rewritten after loading cannot crash or change the model. */
sl_status_t sl_model_load_file(sl_model_t* model, const char* path);
/* Options, set before loading. num_threads: 1..256 (the caller's thread works too).
 * isa_mask: kernels may only use these SL_ISA_* bits (tests, and comparing ISAs);
 * the default is every bit. tune != 0: per layer, time the candidate kernels on
 * the real shapes and keep the fastest instead of trusting the cost model. Fusion runs chains
 * of 1x1 expand -> depthwise -> 1x1 project (+ residual add) as one block over bands of output
 * rows: band_rows -1 (the default) where the runtime expects it to pay, 0 never, k > 0 every
 * such chain in bands of k rows (small-cache devices, and tests). */
sl_status_t sl_model_set_num_threads(sl_model_t* model, int num_threads);
sl_status_t sl_model_set_isa_mask(sl_model_t* model, uint32_t isa_mask);
sl_status_t sl_model_set_tuning(sl_model_t* model, int tune);
sl_status_t sl_model_set_fusion(sl_model_t* model, int band_rows);
/* Dense 3x3 stride-1 convolutions run Winograd F(2x2,3x3) or F(4x4,3x3) where measured faster
 * (tile -1, the default); 0 never; 2 or 4 that tile on every such layer (tests, benchmarks). */
sl_status_t sl_model_set_winograd(sl_model_t* model, int tile);
/* SL_PRECISION_FP16: 1x1 convolutions and FC layers on channel-major data (spmm, gemm) and
 * depthwise convolutions compute in fp16, their activations converted at the layer's boundaries,
 * where the CPU has SL_ISA_NEON_FP16 (and the ISA mask allows it); every other op, and every op on
 * other CPUs, in fp32. Relative error about 1e-3 per layer; off by default. */
typedef enum { SL_PRECISION_FP32 = 0, SL_PRECISION_FP16 = 1 } sl_precision_t;
sl_status_t sl_model_set_precision(sl_model_t* model, int precision);
/* The most bytes loading may allocate: the file copy, tables, unpacked and packed weights, the
 * arena and the scratch, all counted. A file needing more fails with SL_ERROR_OUT_OF_MEMORY and a
 * message giving both sizes, before anything that large is allocated. The default,
 * SL_DEFAULT_MEMORY_LIMIT (2 GiB), is over ten times what the models we ship need and fits
 * wasm32's address space, while a small hostile file cannot make a load take the machine's
 * memory; bytes >= 1, SIZE_MAX for no limit. */
sl_status_t sl_model_set_memory_limit(sl_model_t* model, size_t bytes);

int32_t sl_model_num_inputs(const sl_model_t* model);
int32_t sl_model_num_outputs(const sl_model_t* model);
sl_status_t sl_model_input_info(const sl_model_t* model, int32_t index, sl_tensor_info_t* info);
sl_status_t sl_model_output_info(const sl_model_t* model, int32_t index, sl_tensor_info_t* info);
/* Arena-resident storage of an input / output, valid until the model is freed.
 * Write inputs there, call sl_model_run, read outputs there: no copies inside. */
sl_status_t sl_model_input_data(sl_model_t* model, int32_t index, void** data);
sl_status_t sl_model_output_data(sl_model_t* model, int32_t index, const void** data);
sl_status_t sl_model_run(sl_model_t* model);
/* Models converted with dynamic dimensions (a sequence length) run any size from 1 to the
 * converted maximum without reloading: give input `index` its new shape (static axes must
 * match); every tensor sharing those dimensions follows, outputs included. Sizes persist
 * until changed; input data must be written again after a resize. */
sl_status_t sl_model_resize_input(sl_model_t* model, int32_t index, int32_t rank, const int32_t* shape);

/* Bytes of the arena that holds every intermediate tensor. */
size_t sl_model_arena_bytes(const sl_model_t* model);
/* Bytes of per-op scratch (patch tiles, padded planes, transposes), shared by all ops. */
size_t sl_model_scratch_bytes(const sl_model_t* model);

/* Per-op profile. Counting starts when profiling is enabled (allowed at any time
 * after load; enabling resets the counters). */
typedef struct {
  const char* name;   /* the operator's name in the file */
  const char* type;   /* e.g. "CONV2D" */
  const char* kernel; /* the microkernel chosen at load, or "" for plain C ops */
  double flops;       /* per run, counting stored weights only */
  double dense_flops; /* per run, as if every weight were stored */
  uint64_t time_ns;   /* summed over profiled runs */
  uint64_t runs;
  uint64_t weight_bytes;     /* constant inputs as stored in the file */
  uint64_t activation_bytes; /* non-constant inputs and outputs */
  uint32_t group_size;       /* r of a group-sparse weight; 0 when dense */
  int32_t fused_into;        /* -1, or the op whose fused block runs this one (its time counts there) */
} sl_op_profile_t;

sl_status_t sl_model_set_profiling(sl_model_t* model, int enable);
int32_t sl_model_num_ops(const sl_model_t* model);
sl_status_t sl_model_op_profile(const sl_model_t* model, int32_t index, sl_op_profile_t* profile);
/* SL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* SPARSELITE_H */
