/* Vector operations for the kernel templates: AVX2 + FMA, 8 floats. Function-level target
 * attributes let one binary carry these next to SSE2 code; the kernel lists only select them
 * when cpuid reports AVX2 and FMA. The operations and their NaN rules are listed in
 * templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <immintrin.h>

#define SL_V_WIDTH 8
#define SL_V_GEMM_PACK 1 /* gemm packs tiles whose columns share an L1 set (templates/matrix.h): 20-37% faster there on the Zen 3 EPYC */
#define SL_V_TARGET __attribute__((target("avx2,fma")))
#define SL_V_INLINE static inline __attribute__((always_inline)) SL_V_TARGET

typedef __m256 sl_v;
typedef __m256 sl_vm;      /* lane mask: all bits set or clear */
/* Lanes [0, n) as a mask for loads, and n for stores: Zen's masked stores are microcoded (a
 * 7-float row's stores cost more than its arithmetic), its masked loads are not. */
typedef struct {
  __m256i mask;
  size_t n;
} sl_v_tail;

static const int32_t sl_v_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) {
  const sl_v_tail t = {_mm256_loadu_si256((const __m256i*)(sl_v_mask_table + SL_V_WIDTH - n)), n};
  return t;
}
SL_V_INLINE sl_v sl_v_load(const float* p) { return _mm256_loadu_ps(p); }
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail t) { return _mm256_maskload_ps(p, t.mask); }
SL_V_INLINE void sl_v_store(float* p, sl_v v) { _mm256_storeu_ps(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail t) {
  if (t.n == SL_V_WIDTH) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 part = _mm256_castps256_ps128(v);
  if (t.n & 4) {
    _mm_storeu_ps(p, part);
    part = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (t.n & 2) {
    _mm_storel_pi((__m64*)(void*)p, part);
    part = _mm_movehl_ps(part, part);
    p += 2;
  }
  if (t.n & 1) _mm_store_ss(p, part);
}
SL_V_INLINE sl_v sl_v_splat(const float* p) { return _mm256_broadcast_ss(p); }
SL_V_INLINE sl_v sl_v_dup(float v) { return _mm256_set1_ps(v); }
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return _mm256_add_ps(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return _mm256_sub_ps(a, b); }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return _mm256_mul_ps(a, b); }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return _mm256_div_ps(a, b); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return _mm256_fmadd_ps(a, b, acc); }
/* maxps/minps return their second operand when either is NaN: it is a. */
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return _mm256_max_ps(b, a); }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return _mm256_min_ps(b, a); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return sl_v_min(sl_v_max(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return _mm256_sqrt_ps(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) {
  __m256i e = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(a), 23), _mm256_set1_epi32(0xFF));
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(127)));
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  __m256i m = _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x007FFFFF));
  return _mm256_castsi256_ps(_mm256_or_si256(m, _mm256_set1_epi32(0x3F800000)));
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return _mm256_blendv_ps(b, a, m); }
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail t) { return _mm256_castsi256_ps(t.mask); }
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) {
  __m256i bits = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23));
}
/* Lanes k .. k + 7 of a then b, for a constant k: alignr works within 128-bit halves, so it
 * pairs a or b with the halves straddling them (a's high, b's low). */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  const __m256i x = _mm256_castps_si256(a), y = _mm256_castps_si256(b), mid = _mm256_permute2x128_si256(x, y, 0x21);
  switch (k) {
    case 1: return _mm256_castsi256_ps(_mm256_alignr_epi8(mid, x, 4));
    case 2: return _mm256_castsi256_ps(_mm256_alignr_epi8(mid, x, 8));
    case 3: return _mm256_castsi256_ps(_mm256_alignr_epi8(mid, x, 12));
    case 4: return _mm256_castsi256_ps(mid);
    case 5: return _mm256_castsi256_ps(_mm256_alignr_epi8(y, mid, 4));
    case 6: return _mm256_castsi256_ps(_mm256_alignr_epi8(y, mid, 8));
    case 7: return _mm256_castsi256_ps(_mm256_alignr_epi8(y, mid, 12));
    default: return a;
  }
}
/* shuffle_ps picks within 128-bit halves: a0 a2 b0 b2 | a4 a6 b4 b6; the 64-bit permute orders them. */
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
/* unpack interleaves within 128-bit halves; the halves then go in order. */
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) {
  return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20);
}
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) {
  return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31);
}
/* 8x8 in 24 shuffles (three rounds of zips take 48): 4x4 transposes within the 128-bit halves
 * (unpack, then shuffle), then the halves exchanged. */
#define SL_V_TRANSPOSE 1
SL_V_INLINE void sl_v_transpose(sl_v* r) {
  sl_v t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; j++) {
    r[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
  }
}
SL_V_INLINE float sl_v_hsum(sl_v v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
SL_V_INLINE float sl_v_hmax(sl_v v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, 1)));
}

#endif
