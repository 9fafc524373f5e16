/* Vector operations for the kernel templates: AVX-512F, 16 floats, with mask registers for partial
 * vectors and compares. Function-level target attributes let one binary carry these next to the
 * AVX2 and SSE2 code; the lists only select them when cpuid (and the OS) report AVX-512F. The
 * operations and their NaN rules are listed in templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <immintrin.h>

#define SL_V_WIDTH 16
#define SL_V_TARGET __attribute__((target("avx512f,avx2,fma")))
#define SL_V_INLINE static inline __attribute__((always_inline)) SL_V_TARGET

#define SL_V_NC_SPREAD_AHEAD 1 /* gemm_nc fetches the next panel's weights over every tile (templates/matrix.h) */

typedef __m512 sl_v;
typedef __mmask16 sl_vm;     /* one bit per lane */
typedef __mmask16 sl_v_tail; /* lanes [0, n) set */

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) { return (__mmask16)((1u << n) - 1u); }
SL_V_INLINE sl_v_tail sl_v_tail_range(size_t lo, size_t hi) { return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)); }
SL_V_INLINE sl_v sl_v_load(const float* p) { return _mm512_loadu_ps(p); }
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail t) { return _mm512_maskz_loadu_ps(t, p); }
SL_V_INLINE void sl_v_store(float* p, sl_v v) { _mm512_storeu_ps(p, v); }
/* gemm's last few pixels along the rows of two 8-row panels (templates/matrix.h) */
#define SL_V_GEMM_ROW_TAIL 1
SL_V_INLINE sl_v sl_v_load_halves(const float* lo, const float* hi) {
  const __m512d low = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(lo)));
  return _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(hi)), 1));
}
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail t) { _mm512_mask_storeu_ps(p, t, v); }
SL_V_INLINE sl_v sl_v_splat(const float* p) { return _mm512_set1_ps(*p); }
SL_V_INLINE sl_v sl_v_dup(float v) { return _mm512_set1_ps(v); }
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return _mm512_add_ps(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return _mm512_sub_ps(a, b); }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return _mm512_mul_ps(a, b); }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return _mm512_div_ps(a, b); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return _mm512_fmadd_ps(a, b, acc); }
/* vmaxps/vminps return their second operand when either is NaN: it is a. */
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return _mm512_max_ps(b, a); }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return _mm512_min_ps(b, a); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return sl_v_min(sl_v_max(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return _mm512_abs_ps(a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return _mm512_sqrt_ps(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) { /* by the bits, as every ISA (getexp_ps would also read subnormals) */
  __m512i e = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(a), 23), _mm512_set1_epi32(0xFF));
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(e, _mm512_set1_epi32(127)));
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  __m512i m = _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x007FFFFF));
  return _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_set1_epi32(0x3F800000)));
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return _mm512_mask_blend_ps(m, b, a); }
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail t) { return t; }
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) {
  __m512i bits = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127));
  return _mm512_castsi512_ps(_mm512_slli_epi32(bits, 23));
}
/* Lanes k .. k + 15 of a then b, for a constant k (each case is an immediate). */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  const __m512i x = _mm512_castps_si512(a), y = _mm512_castps_si512(b);
  switch (k) {
#define SL_V_EXT_CASE(n) \
  case n: return _mm512_castsi512_ps(_mm512_alignr_epi32(y, x, n));
    SL_V_EXT_CASE(1) SL_V_EXT_CASE(2) SL_V_EXT_CASE(3) SL_V_EXT_CASE(4) SL_V_EXT_CASE(5) SL_V_EXT_CASE(6)
    SL_V_EXT_CASE(7) SL_V_EXT_CASE(8) SL_V_EXT_CASE(9) SL_V_EXT_CASE(10) SL_V_EXT_CASE(11) SL_V_EXT_CASE(12)
    SL_V_EXT_CASE(13) SL_V_EXT_CASE(14) SL_V_EXT_CASE(15)
#undef SL_V_EXT_CASE
    default: return a;
  }
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
}
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
}
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
}
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) {
  return _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
}
#define SL_V_LOOKUP 1
SL_V_INLINE sl_v sl_v_lookup(sl_v table, const int32_t* idx) {
  return _mm512_permutexvar_ps(_mm512_loadu_si512((const void*)idx), table);
}
SL_V_INLINE float sl_v_hsum(sl_v v) { return _mm512_reduce_add_ps(v); }
SL_V_INLINE float sl_v_hmax(sl_v v) { return _mm512_reduce_max_ps(v); }

#endif
