/* AArch64 NEON with ARMv8.2-A fp16 arithmetic: the lists' f16 matrix kernels from the matrix
 * templates, over 8 halves per vector, and the conversions at fp16 layers' boundaries. Built into every aarch64 library (function-level target attributes),
 * selected only where sl_cpu_isa() reports SL_ISA_NEON_FP16. */
#include "../kernels.h"
#if SL_ARCH_ARM64
#include "../vec/neon_fp16.h"
#define SL_LIST_NEON_FP16 1
#include "../templates/matrix.h"

#define SL_DEFINE_f16_spmm SL_DEFINE_spmm
#define SL_DEFINE_f16_gemm SL_DEFINE_gemm
#define SL_DEFINE_f16_gemm_nc SL_DEFINE_gemm_nc
#define SL_DEFINE_f16_dwconv SL_DEFINE_dwconv
/* The conversions: 8 per step as two 4-lane FCVTN / FCVTL, the tail through a buffer. Rounding is
 * the FPCR's, round to nearest even unless a caller changed it. */
#define SL_DEFINE_f16_from_f32(name, PIXELS, ROWS)                                       \
  SL_V_TARGET void name(const float* x, sl_f16* y, size_t n) {                           \
    size_t i = 0;                                                                        \
    for (; i + 8 <= n; i += 8)                                                           \
      vst1q_f16((float16_t*)(y + i), vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4))); \
    if (i == n) return;                                                                  \
    float in[8] = {0};                                                                   \
    uint16_t out[8];                                                                     \
    memcpy(in, x + i, (n - i) * sizeof(float));                                          \
    vst1q_f16((float16_t*)(void*)out, vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(in)), vld1q_f32(in + 4))); \
    memcpy(y + i, out, (n - i) * sizeof(sl_f16));                                        \
  }
#define SL_DEFINE_f16_to_f32(name, PIXELS, ROWS)                                         \
  SL_V_TARGET void name(const sl_f16* x, float* y, size_t n) {                           \
    size_t i = 0;                                                                        \
    for (; i + 8 <= n; i += 8) {                                                         \
      const float16x8_t h = vld1q_f16((const float16_t*)(x + i));                        \
      vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));                                   \
      vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));                                        \
    }                                                                                    \
    if (i == n) return;                                                                  \
    uint16_t in[8] = {0};                                                                \
    float out[8];                                                                        \
    memcpy(in, x + i, (n - i) * sizeof(sl_f16));                                         \
    const float16x8_t h = vld1q_f16((const float16_t*)(void*)in);                        \
    vst1q_f32(out, vcvt_f32_f16(vget_low_f16(h)));                                       \
    vst1q_f32(out + 4, vcvt_high_f32_f16(h));                                            \
    memcpy(y + i, out, (n - i) * sizeof(float));                                         \
  }
#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) SL_DEFINE_##family(name, pixels, rows)
#include "../lists.inc"
#undef SL_UKERNEL
#endif
