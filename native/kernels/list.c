/* Every kernel variant, most specific first. Selection takes the first entry the
 * CPU can run; each list ends in its plain C reference, which runs everywhere. */
#include "kernels.h"

const sl_spmm_kernel_t sl_spmm_kernels[] = {
    {"f32_spmm__ref", SL_ISA_SCALAR, 0, sl_f32_spmm_ref},
};
const size_t sl_spmm_kernel_count = sizeof(sl_spmm_kernels) / sizeof(sl_spmm_kernels[0]);

const sl_gemm_kernel_t sl_gemm_kernels[] = {
    {"f32_gemm__ref", SL_ISA_SCALAR, sl_f32_gemm_ref},
};
const size_t sl_gemm_kernel_count = sizeof(sl_gemm_kernels) / sizeof(sl_gemm_kernels[0]);

const sl_conv2d_kernel_t sl_conv2d_kernels[] = {
    {"f32_conv2d__ref", SL_ISA_SCALAR, sl_f32_conv2d_ref},
};
const size_t sl_conv2d_kernel_count = sizeof(sl_conv2d_kernels) / sizeof(sl_conv2d_kernels[0]);

uint32_t sl_cpu_isa(void) { return SL_ISA_SCALAR; }

static int isa_ok(uint32_t needed, uint32_t available) { return (needed & ~available) == 0; }

const sl_spmm_kernel_t* sl_spmm_select(uint32_t isa, uint32_t r) {
  for (size_t i = 0; i < sl_spmm_kernel_count; i++) {
    const sl_spmm_kernel_t* k = &sl_spmm_kernels[i];
    if (isa_ok(k->isa, isa) && (k->r == 0 || k->r == r)) return k;
  }
  return NULL;
}

const sl_gemm_kernel_t* sl_gemm_select(uint32_t isa) {
  for (size_t i = 0; i < sl_gemm_kernel_count; i++)
    if (isa_ok(sl_gemm_kernels[i].isa, isa)) return &sl_gemm_kernels[i];
  return NULL;
}

const sl_conv2d_kernel_t* sl_conv2d_select(uint32_t isa) {
  for (size_t i = 0; i < sl_conv2d_kernel_count; i++)
    if (isa_ok(sl_conv2d_kernels[i].isa, isa)) return &sl_conv2d_kernels[i];
  return NULL;
}
