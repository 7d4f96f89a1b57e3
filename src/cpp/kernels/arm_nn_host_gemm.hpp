// Host-only fast paths of the s8 conv / FC kernels (internal to src/cpp/kernels).
//
// Compiled only when the host build defines HARCORE_HOST_KERNELS (CMakeLists.txt) on x86-64 with GCC or
// Clang; the firmware never sees this code and runs the portable loops of the kernels, which stay the
// reference. Exactness: every output is bias + sum_k (w[k] + filter_offset) * (x[k] + input_offset) taken
// modulo 2^32 — the portable kernels' int64 sum wrapped to int32 — then the identical scalar
// requantization (arm_nn_requantize_to_s8). Integer addition modulo 2^32 is associative and commutative,
// so summing in another order (eight int32 lanes of vpmaddwd pairs, reduced at the end) gives the same
// bits. Each vpmaddwd pair sum is exact: both factors lie in [-255, 255] after the offsets, so a pair is
// at most 2 * 65025 in magnitude. No float, no heap, no scratch beyond what the caller already checked.
//
// AVX2 is chosen at run time (__builtin_cpu_supports); without it, or with the environment variable
// HARCORE_PORTABLE_KERNELS set (how tests compare both paths in one build), the kernels run their
// portable loops.
#pragma once

#include <stdint.h>

#if defined(HARCORE_HOST_KERNELS) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HARCORE_HOST_SIMD 1

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/arm_nn_dw_pixel.hpp"
#include "kernels/arm_nn_types.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

#define HARCORE_AVX2 __attribute__((target("avx2")))
#define HARCORE_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

namespace harcore {
namespace kernels {
namespace host {

// Whether the AVX2 paths run: decided once per process.
inline bool simd_enabled() {
  static const bool on = __builtin_cpu_supports("avx2") && getenv("HARCORE_PORTABLE_KERNELS") == nullptr;
  return on;
}

// A contiguous run of `len` int8 values read at a_off from each activation row and at w_off from each
// weight row (one kernel row of a conv window, or the whole K of a fully-connected row).
struct Seg {
  int32_t a_off;
  int32_t w_off;
  int32_t len;
};

// Most segments a conv window may have on this path (one per filter row); taller filters take the
// portable path.
constexpr int32_t kMaxSegs = 16;

HARCORE_AVX2_INLINE int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Everything one GEMM-like call needs: weight rows (w + oc * w_step), their bias, the requantization
// (mult_step 0: one multiplier/shift per tensor) and the offsets.
struct Gemm {
  const int8_t* w;
  int64_t w_step;
  const int32_t* bias;
  const int32_t* mult;
  const int32_t* shift;
  int32_t mult_step;
  int32_t aoff, woff;
  int32_t out_off, act_min, act_max;
};

// Register block: kMR activation rows x kNR weight rows. 2 x 4 measured fastest on Zen 3 (8 accumulators,
// 2 activation vectors, 1 weight vector, 1 product: no spills; wider blocks spill), and its 8 sums fill one
// vector for the requantization.
constexpr int kMR = 2;
constexpr int kNR = 4;

// acc[i][j] (8 int32 lanes) + tail[i][j] = sum over segments of (a_i[k] + aoff') * (w_j[k] + woff) modulo
// 2^32, where activation row i starts at a + i * a_step and weight row j at w[j]; int8 values widened to
// int16 and multiplied pairwise by vpmaddwd. aoff' is aoff with AIN and 0 without: for many rows the caller
// adds aoff * sum_k (w_j[k] + woff) once per channel instead (the same sum modulo 2^32), which saves a
// register and an add per activation vector; for one or two rows the weight sums would cost as much as
// the dot products, so the offset goes into the activations (AIN).
template <int MR, int NR, bool WOFF, bool AIN>
HARCORE_AVX2_INLINE void block_acc(const int8_t* a, int64_t a_step, const int8_t* const* w, const Seg* segs,
                                   int32_t nseg, int32_t aoff, int32_t woff, __m256i acc[MR][NR],
                                   uint32_t tail[MR][NR]) {
  const __m256i woff16 = _mm256_set1_epi16(static_cast<int16_t>(woff));
  const __m256i aoff16 = _mm256_set1_epi16(static_cast<int16_t>(aoff));
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      acc[i][j] = _mm256_setzero_si256();
      tail[i][j] = 0;
    }
  }
  for (int32_t s = 0; s < nseg; ++s) {
    const Seg sg = segs[s];
    const int8_t* ap[MR];
    const int8_t* wp[NR];
    for (int i = 0; i < MR; ++i) ap[i] = a + i * a_step + sg.a_off;
    for (int j = 0; j < NR; ++j) wp[j] = w[j] + sg.w_off;
    int32_t k = 0;
    for (; k + 16 <= sg.len; k += 16) {
      __m256i av[MR];
      for (int i = 0; i < MR; ++i) {
        av[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ap[i] + k)));
        if (AIN) av[i] = _mm256_add_epi16(av[i], aoff16);
      }
      for (int j = 0; j < NR; ++j) {
        __m256i bv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp[j] + k)));
        if (WOFF) bv = _mm256_add_epi16(bv, woff16);
        for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(av[i], bv));
      }
    }
    if (k + 8 <= sg.len) {
      const __m128i woff8 = _mm256_castsi256_si128(woff16);
      __m128i av[MR];
      for (int i = 0; i < MR; ++i) {
        av[i] = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ap[i] + k)));
        if (AIN) av[i] = _mm_add_epi16(av[i], _mm256_castsi256_si128(aoff16));
      }
      for (int j = 0; j < NR; ++j) {
        __m128i bv = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wp[j] + k)));
        if (WOFF) bv = _mm_add_epi16(bv, woff8);
        for (int i = 0; i < MR; ++i) {
          acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_zextsi128_si256(_mm_madd_epi16(av[i], bv)));
        }
      }
      k += 8;
    }
    for (; k < sg.len; ++k) {
      for (int i = 0; i < MR; ++i) {
        const int32_t x = ap[i][k] + (AIN ? aoff : 0);
        for (int j = 0; j < NR; ++j) tail[i][j] += static_cast<uint32_t>(x * (wp[j][k] + woff));
      }
    }
  }
}

// wsum[j] = sum over segments of (w_j[k] + woff), modulo 2^32.
template <int NR>
HARCORE_AVX2_INLINE void weight_sums(const int8_t* const* w, const Seg* segs, int32_t nseg, int32_t woff,
                                     uint32_t* wsum) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int j = 0; j < NR; ++j) {
    __m256i acc = _mm256_setzero_si256();
    uint32_t t = 0;
    for (int32_t s = 0; s < nseg; ++s) {
      const int8_t* wp = w[j] + segs[s].w_off;
      const int32_t len = segs[s].len;
      int32_t k = 0;
      for (; k + 16 <= len; k += 16) {
        const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + k)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, ones));
      }
      for (; k < len; ++k) t += static_cast<uint32_t>(wp[k]);
      t += static_cast<uint32_t>(woff) * static_cast<uint32_t>(len);
    }
    wsum[j] = static_cast<uint32_t>(hsum_epi32(acc)) + t;
  }
}

// The four lane sums of four accumulators: [sum(v0), sum(v1), sum(v2), sum(v3)].
HARCORE_AVX2_INLINE __m128i hsum4(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
  return _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
}

// Requantization parameters of one 4-channel block, repeated in both 128-bit halves (two rows).
struct Requant4 {
  __m256i base;     // bias + aoff * wsum, modulo 2^32
  __m256i mult;
  __m256i left;     // max(shift, 0), clamped to [0, 31]
  __m256i right;    // max(-shift, 0), clamped to [0, 31]
  __m256i out_off, act_min, act_max;
};

// arm_nn_requantize_to_s8 on 8 lanes, the same integer steps: v * 2^left modulo 2^32; the doubling high
// multiply floor((v * m + 2^30) / 2^31) taken modulo 2^32 (bits 31..62 of the 64-bit sum, which logical
// and arithmetic shifts agree on); the rounding divide by 2^right (ties away from zero); + output offset
// modulo 2^32; clamp to the activation range (inside int8, so the int8 saturation is a no-op).
HARCORE_AVX2_INLINE __m256i requantize8(__m256i v, const Requant4& q) {
  const __m256i x = _mm256_sllv_epi32(v, q.left);
  const __m256i round = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, q.mult), round), 31);
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(q.mult, 32)), round), 1);
  const __m256i h = _mm256_blend_epi32(even, odd, 0xAA);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, q.right), one);
  const __m256i rem = _mm256_and_si256(h, mask);
  const __m256i neg = _mm256_cmpgt_epi32(_mm256_setzero_si256(), h);  // -1 where h < 0
  const __m256i thr = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), neg);
  __m256i r = _mm256_sub_epi32(_mm256_srav_epi32(h, q.right), _mm256_cmpgt_epi32(rem, thr));
  r = _mm256_add_epi32(r, q.out_off);
  return _mm256_min_epi32(_mm256_max_epi32(r, q.act_min), q.act_max);
}

HARCORE_AVX2_INLINE int32_t shift_left_amount(int32_t s) { return arm_nn_shift_amount(s > 0 ? s : 0); }
HARCORE_AVX2_INLINE int32_t shift_right_amount(int32_t s) { return arm_nn_shift_amount(s < 0 ? -s : 0); }

// 4 int32 values repeated in both 128-bit halves.
HARCORE_AVX2_INLINE __m256i rep(const int32_t* v) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v));
  return _mm256_set_m128i(x, x);
}

HARCORE_AVX2_INLINE Requant4 make_requant4(const Gemm& g, int32_t oc, const uint32_t* base) {
  int32_t m[4], l[4], r[4];
  for (int j = 0; j < 4; ++j) {
    const int32_t idx = (oc + j) * g.mult_step;
    m[j] = g.mult[idx];
    l[j] = shift_left_amount(g.shift[idx]);
    r[j] = shift_right_amount(g.shift[idx]);
  }
  const int32_t b[4] = {static_cast<int32_t>(base[0]), static_cast<int32_t>(base[1]), static_cast<int32_t>(base[2]),
                        static_cast<int32_t>(base[3])};
  return Requant4{rep(b), rep(m), rep(l), rep(r), _mm256_set1_epi32(g.out_off), _mm256_set1_epi32(g.act_min),
                  _mm256_set1_epi32(g.act_max)};
}

// Rows i of a finished MR x 4 block: requantized in one vector, 4 bytes stored per row.
template <int MR>
HARCORE_AVX2_INLINE void store4(__m256i acc[MR][4], uint32_t tail[MR][4], const Requant4& q, int8_t* out,
                                int64_t out_row_step) {
  const __m128i s0 = _mm_add_epi32(hsum4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail[0])));
  __m128i s1 = s0;
  if constexpr (MR > 1) {
    s1 = _mm_add_epi32(hsum4(acc[1][0], acc[1][1], acc[1][2], acc[1][3]),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail[1])));
  }
  const __m256i v = requantize8(_mm256_add_epi32(_mm256_set_m128i(s1, s0), q.base), q);
  // low byte of each int32 lane -> 4 bytes at the bottom of each 128-bit half
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, pick);
  const int32_t r0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b));
  memcpy(out, &r0, 4);
  if constexpr (MR > 1) {
    const int32_t r1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(b, 1));
    memcpy(out + out_row_step, &r1, 4);
  }
}

// Any block shape, one output at a time through the scalar arm_nn_requantize_to_s8.
template <int MR, int NR>
HARCORE_AVX2_INLINE void store_scalar(__m256i acc[MR][NR], uint32_t tail[MR][NR], const uint32_t* base,
                                      const Gemm& g, int32_t oc, int8_t* out, int64_t out_row_step) {
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const int32_t sum = static_cast<int32_t>(static_cast<uint32_t>(hsum_epi32(acc[i][j])) + tail[i][j] + base[j]);
      const int32_t idx = (oc + j) * g.mult_step;
      out[i * out_row_step + j] =
          arm_nn_requantize_to_s8(sum, g.mult[idx], g.shift[idx], g.out_off, g.act_min, g.act_max);
    }
  }
}

template <int MR, int NR, bool WOFF, bool AIN>
HARCORE_AVX2_INLINE void run_block(const Gemm& g, const int8_t* a, int64_t a_step, const Seg* segs, int32_t nseg,
                                   const int8_t* const* wr, int32_t oc, const uint32_t* base, const Requant4* q,
                                   int8_t* out, int64_t out_row_step) {
  __m256i acc[MR][NR];
  uint32_t tail[MR][NR];
  block_acc<MR, NR, WOFF, AIN>(a, a_step, wr, segs, nseg, g.aoff, g.woff, acc, tail);
  if constexpr (NR == 4) {
    (void)base;
    (void)oc;
    store4<MR>(acc, tail, *q, out, out_row_step);
  } else {
    (void)q;
    store_scalar<MR, NR>(acc, tail, base, g, oc, out, out_row_step);
  }
}

// Most taps (sum of segment lengths) the short-row kernel takes; longer rows use the vpmaddwd blocks.
constexpr int32_t kSmallTaps = 8;

// Short rows (K < kSmallTaps, e.g. a 1x1 conv over 1-4 channels): 8 lanes = 2 rows x 4 output channels,
// each tap one broadcast activation times the 4 channels' weights (vpmulld), then the vector
// requantization. Same sum modulo 2^32 as the other paths.
template <bool WOFF, bool AIN>
HARCORE_AVX2_INLINE void small_rows(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs,
                                    int32_t nseg, const int8_t* const* wr, const Requant4& q, int8_t* out,
                                    int64_t out_row_step) {
  __m256i wv[kSmallTaps];
  int32_t at[kSmallTaps];
  int32_t taps = 0;
  for (int32_t s = 0; s < nseg; ++s) {
    for (int32_t k = 0; k < segs[s].len; ++k, ++taps) {
      int32_t w4[4];
      for (int j = 0; j < 4; ++j) w4[j] = wr[j][segs[s].w_off + k] + (WOFF ? g.woff : 0);
      wv[taps] = rep(w4);
      at[taps] = segs[s].a_off + k;
    }
  }
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int32_t r = 0; r < rows; r += 2) {
    const bool two = r + 1 < rows;
    const int8_t* a0 = a + r * a_step;
    const int8_t* a1 = two ? a0 + a_step : a0;
    __m256i acc = q.base;
    for (int32_t t = 0; t < taps; ++t) {
      const int32_t o = AIN ? g.aoff : 0;
      const __m256i xv = _mm256_set_m128i(_mm_set1_epi32(a1[at[t]] + o), _mm_set1_epi32(a0[at[t]] + o));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, wv[t]));
    }
    const __m256i b = _mm256_shuffle_epi8(requantize8(acc, q), pick);
    const int32_t r0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b));
    memcpy(out + r * out_row_step, &r0, 4);
    if (two) {
      const int32_t r1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(b, 1));
      memcpy(out + (r + 1) * out_row_step, &r1, 4);
    }
  }
}

// Output channels [oc, oc + NR) for every row: weight sums and requantization set up once, then the rows
// in pairs (their activations stream past the block's weights, which stay in L1).
template <int NR, bool WOFF, bool AIN>
HARCORE_AVX2_INLINE void oc_block(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs,
                                  int32_t nseg, int32_t oc, int8_t* out, int64_t out_row_step) {
  const int8_t* wr[NR];
  for (int j = 0; j < NR; ++j) wr[j] = g.w + (oc + j) * g.w_step;
  uint32_t wsum[NR] = {};
  if (!AIN) weight_sums<NR>(wr, segs, nseg, g.woff, wsum);
  uint32_t base[NR];
  for (int j = 0; j < NR; ++j) {
    base[j] = (g.bias != nullptr ? static_cast<uint32_t>(g.bias[oc + j]) : 0u) + static_cast<uint32_t>(g.aoff) * wsum[j];
  }
  Requant4 q{};
  out += oc;
  if constexpr (NR == 4) {
    q = make_requant4(g, oc, base);
    int32_t taps = 0;
    for (int32_t s = 0; s < nseg; ++s) taps += segs[s].len;
    if (taps < kSmallTaps) {
      small_rows<WOFF, AIN>(g, a, a_step, rows, segs, nseg, wr, q, out, out_row_step);
      return;
    }
  }
  int32_t r = 0;
  for (; r + kMR <= rows; r += kMR) {
    run_block<kMR, NR, WOFF, AIN>(g, a + r * a_step, a_step, segs, nseg, wr, oc, base, &q, out + r * out_row_step,
                             out_row_step);
  }
  for (; r < rows; ++r) {
    run_block<1, NR, WOFF, AIN>(g, a + r * a_step, a_step, segs, nseg, wr, oc, base, &q, out + r * out_row_step,
                           out_row_step);
  }
}

template <bool WOFF, bool AIN>
HARCORE_AVX2 void gemm_rows_t(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs,
                              int32_t nseg, int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  int32_t oc = oc_begin;
  for (; oc + kNR <= oc_end; oc += kNR) oc_block<kNR, WOFF, AIN>(g, a, a_step, rows, segs, nseg, oc, out, out_row_step);
  switch (oc_end - oc) {
    case 3: oc_block<3, WOFF, AIN>(g, a, a_step, rows, segs, nseg, oc, out, out_row_step); break;
    case 2: oc_block<2, WOFF, AIN>(g, a, a_step, rows, segs, nseg, oc, out, out_row_step); break;
    case 1: oc_block<1, WOFF, AIN>(g, a, a_step, rows, segs, nseg, oc, out, out_row_step); break;
    default: break;
  }
}

template <bool AIN>
inline void gemm_rows_a(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs, int32_t nseg,
                        int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  if (g.woff != 0) {
    gemm_rows_t<true, AIN>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  } else {
    gemm_rows_t<false, AIN>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  }
}

// Rows below this count add the activation offset per value (AIN) instead of through weight sums.
constexpr int32_t kWeightSumRows = 4;

inline void gemm_rows(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs, int32_t nseg,
                      int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  if (rows < kWeightSumRows) {
    gemm_rows_a<true>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  } else {
    gemm_rows_a<false>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  }
}

// Fully connected: out[b][o] for every batch row b (K = f->n values each). Returns false when this path
// does not apply (the caller then runs the portable loop); arguments are already checked.
inline bool fc_s8(const cmsis_nn_fc_params* p, const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f,
                  const int8_t* filter, const int32_t* bias, const cmsis_nn_dims* out, int8_t* output,
                  const int32_t* multiplier, const int32_t* shift, int32_t mult_step) {
  if (!simd_enabled()) return false;
  const Gemm g{filter, f->n, bias, multiplier, shift, mult_step, p->input_offset, p->filter_offset,
               p->output_offset, p->activation.min, p->activation.max};
  const Seg seg{0, 0, f->n};
  gemm_rows(g, input, f->n, in->n, &seg, 1, 0, out->c, output, out->c);
  return true;
}

// Convolution (not grouped, dilation_w 1, at most kMaxSegs filter rows): every output pixel's window is
// one contiguous run of KW_valid * C_in input bytes per valid filter row (NHWC), read in place — no
// im2col. Pixels whose window lies inside the input in x share their segments and go through the 2 x 4
// blocks; the few at the left/right border get their own clipped segments. Returns false when the path
// does not apply.
inline bool conv_s8(const cmsis_nn_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                    const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f, const int8_t* filter,
                    const int32_t* bias, const cmsis_nn_dims* out, int8_t* output) {
  if (!simd_enabled()) return false;
  if (in->c != f->c || p->dilation.w != 1 || f->h > kMaxSegs) return false;
  const int32_t c = in->c;
  const int32_t row_len = f->w * c;
  const Gemm g{filter, static_cast<int64_t>(f->h) * row_len, bias, q->multiplier, q->shift, 1, p->input_offset, 0,
               p->output_offset, p->activation.min, p->activation.max};
  const int32_t sw = p->stride.w, pw = p->padding.w;
  // x-interior output columns: ox * sw - pw >= 0 and ox * sw - pw + KW <= W
  int32_t ox_lo = (pw + sw - 1) / sw;
  int32_t ox_hi = in->w - f->w + pw >= 0 ? (in->w - f->w + pw) / sw + 1 : 0;  // exclusive
  if (ox_hi > out->w) ox_hi = out->w;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  const int64_t a_step = static_cast<int64_t>(sw) * c;
  const int64_t out_px = out->c;
  // Filters one column wide at stride 1 with full-width output (1x1 convs, temporal KHx1 convs over NHWC
  // (T, sensors, C)): consecutive output pixels read inputs C bytes apart across row ends too, so every
  // row whose filter rows are all inside the input is one GEMM call with H_int * W rows.
  const bool flat = f->w == 1 && pw == 0 && sw == 1 && p->stride.h == 1 && out->w == in->w;
  int32_t oy_lo = 0, oy_hi = 0;  // [oy_lo, oy_hi): rows done by the flat call
  if (flat) {
    oy_lo = p->padding.h;
    oy_hi = in->h + p->padding.h - (f->h - 1) * p->dilation.h;
    if (oy_hi > out->h) oy_hi = out->h;
    if (oy_hi < oy_lo) oy_hi = oy_lo;
  }
  for (int32_t b = 0; b < in->n; ++b) {
    const int8_t* in_b = input + static_cast<int64_t>(b) * in->h * in->w * c;
    if (oy_hi > oy_lo) {
      Seg fsegs[kMaxSegs];
      for (int32_t ky = 0; ky < f->h; ++ky) {
        fsegs[ky] = Seg{static_cast<int32_t>(static_cast<int64_t>(ky) * p->dilation.h * in->w * c), ky * row_len,
                        row_len};
      }
      gemm_rows(g, in_b + static_cast<int64_t>(oy_lo - p->padding.h) * in->w * c, c, (oy_hi - oy_lo) * in->w, fsegs,
                f->h, 0, out->c, output + (static_cast<int64_t>(b) * out->h + oy_lo) * out->w * out_px, out_px);
    }
    for (int32_t oy = 0; oy < out->h; ++oy) {
      if (oy >= oy_lo && oy < oy_hi) {
        oy = oy_hi - 1;
        continue;
      }
      Seg segs[kMaxSegs];
      int32_t nseg = 0;
      for (int32_t ky = 0; ky < f->h; ++ky) {
        const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
        if (iy < 0 || iy >= in->h) continue;  // padding rows are zp_in: contribute 0
        segs[nseg++] = Seg{static_cast<int32_t>(static_cast<int64_t>(iy) * in->w * c), ky * row_len, row_len};
      }
      int8_t* out_row = output + (static_cast<int64_t>(b) * out->h + oy) * out->w * out_px;
      // interior columns: row r = ox reads from in_b + (ox * sw - pw) * c + seg.a_off
      if (ox_hi > ox_lo) {
        gemm_rows(g, in_b + (static_cast<int64_t>(ox_lo) * sw - pw) * c, a_step, ox_hi - ox_lo, segs, nseg, 0, out->c,
                  out_row + ox_lo * out_px, out_px);
      }
      // border columns: the window's valid x taps [kx0, kx1)
      for (int32_t ox = 0; ox < out->w; ++ox) {
        if (ox >= ox_lo && ox < ox_hi) {
          ox = ox_hi - 1;
          continue;
        }
        const int32_t ix = ox * sw - pw;
        const int32_t kx0 = ix < 0 ? -ix : 0;
        const int32_t kx1 = in->w - ix < f->w ? in->w - ix : f->w;
        Seg bsegs[kMaxSegs];
        int32_t nb = 0;
        if (kx1 > kx0) {
          for (int32_t s = 0; s < nseg; ++s) {
            bsegs[nb++] = Seg{segs[s].a_off + (ix + kx0) * c, segs[s].w_off + kx0 * c, (kx1 - kx0) * c};
          }
        }
        gemm_rows(g, in_b, 0, 1, bsegs, nb, 0, out->c, out_row + ox * out_px, out_px);
      }
    }
  }
  return true;
}

// Depthwise convolution, channel multiplier 1, stride_w 1, dilation_w 1, C <= kDwMaxC, at most kDwMaxTaps
// taps. An output row (fixed oy) is a flat run of W_out * C values, e = ox * C + c, and tap (ky, kx) of
// element e reads input row iy at e + (kx - pad_w) * C: 8 consecutive elements are one vector whatever
// C is, with per-lane weights and requantization from tables indexed by e mod C. Elements whose window
// is clipped in x (the left/right border pixels) take the portable per-value formula. Rows clipped in y
// simply skip the invalid filter rows (padding is zp_in and contributes 0). The input offset is added
// per value here (int32 lanes), so clipped rows need no separate weight sums.
constexpr int32_t kDwMaxC = 64;
constexpr int32_t kDwMaxTaps = 16;

HARCORE_AVX2 inline void dw_rows_avx2(const cmsis_nn_dw_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                                      const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f,
                                      const int8_t* filter, const int32_t* bias, const cmsis_nn_dims* out,
                                      int8_t* output) {
  const int32_t c = in->c;
  const int32_t kw = f->w;
  const int32_t taps = f->h * kw;
  // tables of C + 8 entries: entry i belongs to channel i mod C, so a vector starting at element e reads
  // entries [e mod C, e mod C + 8)
  int32_t wtab[kDwMaxTaps][kDwMaxC + 8];
  int32_t mtab[kDwMaxC + 8], ltab[kDwMaxC + 8], rtab[kDwMaxC + 8], btab[kDwMaxC + 8];
  for (int32_t i = 0; i < c + 8; ++i) {
    const int32_t ch = i % c;
    for (int32_t t = 0; t < taps; ++t) wtab[t][i] = filter[static_cast<int64_t>(t) * c + ch];
    mtab[i] = q->multiplier[ch];
    ltab[i] = shift_left_amount(q->shift[ch]);
    rtab[i] = shift_right_amount(q->shift[ch]);
    btab[i] = bias != nullptr ? bias[ch] : 0;
  }
  const int32_t pw = p->padding.w;
  // x-interior output columns: every kx tap inside the input
  int32_t ox_lo = pw;
  int32_t ox_hi = in->w - kw + pw + 1;  // exclusive
  if (ox_hi > out->w) ox_hi = out->w;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  const int32_t e_lo = ox_lo * c, e_hi = ox_hi * c;
  const __m256i aoff = _mm256_set1_epi32(p->input_offset);
  const __m256i out_off = _mm256_set1_epi32(p->output_offset);
  const __m256i act_min = _mm256_set1_epi32(p->activation.min), act_max = _mm256_set1_epi32(p->activation.max);
  const __m256i pack = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const int64_t in_row = static_cast<int64_t>(in->w) * c;
  for (int32_t b = 0; b < in->n; ++b) {
    for (int32_t oy = 0; oy < out->h; ++oy) {
      int64_t rows[kDwMaxTaps];  // input offsets of the valid filter rows' input rows
      int32_t ky_of[kDwMaxTaps];
      int32_t nrows = 0;
      for (int32_t ky = 0; ky < f->h; ++ky) {
        const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
        if (iy < 0 || iy >= in->h) continue;
        rows[nrows] = (static_cast<int64_t>(b) * in->h + iy) * in_row;
        ky_of[nrows++] = ky;
      }
      int8_t* out_row = output + (static_cast<int64_t>(b) * out->h + oy) * out->w * c;
      // the last vector is moved back to end at e_hi (recomputing a few values identically)
      for (int32_t e0 = e_lo; e_hi - e_lo >= 8 && e0 < e_hi; e0 += 8) {
        const int32_t e = e0 + 8 <= e_hi ? e0 : e_hi - 8;
        const int32_t m = e % c;
        __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(btab + m));
        for (int32_t r = 0; r < nrows; ++r) {
          for (int32_t kx = 0; kx < kw; ++kx) {
            const int8_t* src = input + rows[r] + e + static_cast<int64_t>(kx - pw) * c;  // inside the row
            const __m256i x = _mm256_add_epi32(
                _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src))), aoff);
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wtab[ky_of[r] * kw + kx] + m));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(x, w));
          }
        }
        const Requant4 rq{_mm256_setzero_si256(),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mtab + m)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ltab + m)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rtab + m)),
                          out_off, act_min, act_max};
        const __m256i v = _mm256_shuffle_epi8(requantize8(acc, rq), pack);
        const int32_t lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(v));
        const int32_t hi = _mm_cvtsi128_si32(_mm256_extracti128_si256(v, 1));
        memcpy(out_row + e, &lo, 4);
        memcpy(out_row + e + 4, &hi, 4);
      }
      // border pixels, and interiors shorter than one vector: the portable per-value formula
      for (int32_t ox = 0; ox < out->w; ++ox) {
        if (ox >= ox_lo && ox < ox_hi && e_hi - e_lo >= 8) {
          ox = ox_hi - 1;
          continue;
        }
        for (int32_t ch = 0; ch < c; ++ch) {
          const int32_t acc = dw_detail::dw_acc(p, in, input, f, filter, bias, b, oy, ox, ch, ch);
          out_row[static_cast<int64_t>(ox) * c + ch] = dw_detail::dw_out(p, q, acc, ch);
        }
      }
    }
  }
}

// Returns false when the path does not apply (the caller runs its portable loop); arguments are checked.
inline bool dw_s8(const cmsis_nn_dw_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                  const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f, const int8_t* filter,
                  const int32_t* bias, const cmsis_nn_dims* out, int8_t* output) {
  if (!simd_enabled()) return false;
  if (p->ch_mult != 1 || in->c != out->c || p->stride.w != 1 || p->dilation.w != 1) return false;
  if (in->c > kDwMaxC || static_cast<int64_t>(f->h) * f->w > kDwMaxTaps) return false;
  dw_rows_avx2(p, q, in, input, f, filter, bias, out, output);
  return true;
}

// Raw int8 dot products of one vector with `rows` consecutive weight rows of n values (no offsets; the
// LSTM gate matmuls, whose zero points live in the effective biases): out[r] = sum_k a[k] * w[r * n + k]
// modulo 2^32, four rows per block (each activation vector loaded once). dot_rows_s8 returns false when
// the path is off.
HARCORE_AVX2 inline void dot_rows_avx2(const int8_t* a, const int8_t* w, int32_t n, int32_t rows, uint32_t* out) {
  const Seg seg{0, 0, n};
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const int8_t* wr[4] = {w + static_cast<int64_t>(r) * n, w + static_cast<int64_t>(r + 1) * n,
                           w + static_cast<int64_t>(r + 2) * n, w + static_cast<int64_t>(r + 3) * n};
    __m256i acc[1][4];
    uint32_t tail[1][4];
    block_acc<1, 4, false, false>(a, 0, wr, &seg, 1, 0, 0, acc, tail);
    const __m128i s = _mm_add_epi32(hsum4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(tail[0])));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r), s);
  }
  for (; r < rows; ++r) {
    const int8_t* wr[1] = {w + static_cast<int64_t>(r) * n};
    __m256i acc[1][1];
    uint32_t tail[1][1];
    block_acc<1, 1, false, false>(a, 0, wr, &seg, 1, 0, 0, acc, tail);
    out[r] = static_cast<uint32_t>(hsum_epi32(acc[0][0])) + tail[0][0];
  }
}

inline bool dot_rows_s8(const int8_t* a, const int8_t* w, int32_t n, int32_t rows, uint32_t* out) {
  if (!simd_enabled()) return false;
  dot_rows_avx2(a, w, n, rows, out);
  return true;
}

// s8 elementwise add (arm_elementwise_add_s8), 8 values per vector: both inputs through requantize8 with
// no offset and an identity clamp (= arm_nn_requantize), their int32 sum modulo 2^32 (arm_nn_add_q31), then
// requantize8 with the output offset and activation range (= arm_nn_requantize_to_s8). The tail (< 8
// values) is left to the caller's portable loop; returns how many values were done.
HARCORE_AVX2 inline int32_t add_s8_avx2(const int8_t* x1, const int8_t* x2, int32_t off1, int32_t m1, int32_t s1,
                                        int32_t off2, int32_t m2, int32_t s2, int32_t left_shift, int8_t* out,
                                        int32_t out_off, int32_t m_out, int32_t s_out, int32_t act_min,
                                        int32_t act_max, int32_t n) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i lo = _mm256_set1_epi32(INT32_MIN), hi = _mm256_set1_epi32(INT32_MAX);
  const Requant4 q1{zero, _mm256_set1_epi32(m1), _mm256_set1_epi32(shift_left_amount(s1)),
                    _mm256_set1_epi32(shift_right_amount(s1)), zero, lo, hi};
  const Requant4 q2{zero, _mm256_set1_epi32(m2), _mm256_set1_epi32(shift_left_amount(s2)),
                    _mm256_set1_epi32(shift_right_amount(s2)), zero, lo, hi};
  const Requant4 qo{zero, _mm256_set1_epi32(m_out), _mm256_set1_epi32(shift_left_amount(s_out)),
                    _mm256_set1_epi32(shift_right_amount(s_out)), _mm256_set1_epi32(out_off),
                    _mm256_set1_epi32(act_min), _mm256_set1_epi32(act_max)};
  const __m256i o1 = _mm256_set1_epi32(off1), o2 = _mm256_set1_epi32(off2);
  const __m128i ls = _mm_cvtsi32_si128(left_shift);  // (x + off) * 2^left_shift: |x + off| <= 255, no overflow
  const __m256i pack = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i a = _mm256_sll_epi32(
        _mm256_add_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x1 + i))), o1), ls);
    const __m256i b = _mm256_sll_epi32(
        _mm256_add_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x2 + i))), o2), ls);
    const __m256i sum = _mm256_add_epi32(requantize8(a, q1), requantize8(b, q2));
    const __m256i v = _mm256_shuffle_epi8(requantize8(sum, qo), pack);
    const int32_t r0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(v));
    const int32_t r1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(v, 1));
    memcpy(out + i, &r0, 4);
    memcpy(out + i + 4, &r1, 4);
  }
  return i;
}

inline int32_t add_s8(const int8_t* x1, const int8_t* x2, int32_t off1, int32_t m1, int32_t s1, int32_t off2,
                      int32_t m2, int32_t s2, int32_t left_shift, int8_t* out, int32_t out_off, int32_t m_out,
                      int32_t s_out, int32_t act_min, int32_t act_max, int32_t n) {
  if (!simd_enabled()) return 0;
  return add_s8_avx2(x1, x2, off1, m1, s1, off2, m2, s2, left_shift, out, out_off, m_out, s_out, act_min, act_max, n);
}

// s8 max pooling whose filter is one column wide at stride_w 1, no x padding and full-width output (the
// temporal (K, 1) pools over NHWC (T, sensors, C), and 1-D pools): output row oy is the bytewise max of
// the valid input rows of its window, each one flat run of W * C bytes; then the activation clamp (an
// int8 range, checked by the caller). Exact: max and clamp are order-free. Returns false when the path
// does not apply.
HARCORE_AVX2 inline void max_pool_rows_avx2(const cmsis_nn_pool_params* p, const cmsis_nn_dims* in, const int8_t* input,
                                            const cmsis_nn_dims* f, const cmsis_nn_dims* out, int8_t* output) {
  const int64_t row = static_cast<int64_t>(in->w) * in->c;
  const __m256i lo = _mm256_set1_epi8(static_cast<int8_t>(p->activation.min));
  const __m256i hi = _mm256_set1_epi8(static_cast<int8_t>(p->activation.max));
  for (int32_t b = 0; b < in->n; ++b) {
    for (int32_t oy = 0; oy < out->h; ++oy) {
      int32_t y0 = oy * p->stride.h - p->padding.h;
      int32_t y1 = y0 + f->h > in->h ? in->h : y0 + f->h;
      if (y0 < 0) y0 = 0;
      const int8_t* src = input + (static_cast<int64_t>(b) * in->h + y0) * row;
      int8_t* dst = output + (static_cast<int64_t>(b) * out->h + oy) * row;
      int64_t e = 0;
      for (; e + 32 <= row; e += 32) {
        __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + e));
        for (int32_t iy = 1; iy < y1 - y0; ++iy) {
          m = _mm256_max_epi8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + iy * row + e)));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + e), _mm256_min_epi8(_mm256_max_epi8(m, lo), hi));
      }
      for (; e < row; ++e) {
        int32_t m = src[e];
        for (int32_t iy = 1; iy < y1 - y0; ++iy) m = src[iy * row + e] > m ? src[iy * row + e] : m;
        dst[e] = arm_nn_sat_s8(arm_nn_clamp(m, p->activation.min, p->activation.max));
      }
    }
  }
}

inline bool max_pool_s8(const cmsis_nn_pool_params* p, const cmsis_nn_dims* in, const int8_t* input,
                        const cmsis_nn_dims* f, const cmsis_nn_dims* out, int8_t* output) {
  if (!simd_enabled()) return false;
  if (f->w != 1 || p->stride.w != 1 || p->padding.w != 0 || out->w != in->w || out->c != in->c) return false;
  max_pool_rows_avx2(p, in, input, f, out, output);
  return true;
}

}  // namespace host
}  // namespace kernels
}  // namespace harcore

#endif  // HARCORE_HOST_KERNELS && x86-64
