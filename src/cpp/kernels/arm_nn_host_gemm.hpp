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

// sums[i][j] = sum over segments of (a_i[k] + aoff) * (w_j[k] + woff) modulo 2^32, where activation row i
// starts at a + i * a_step and weight row j at w[j]. MR x NR register block; int8 loads widened to int16
// with the offsets added, vpmaddwd, int32 lane accumulators.
template <int MR, int NR, bool WOFF>
HARCORE_AVX2_INLINE void block_dot(const int8_t* a, int64_t a_step, const int8_t* const* w, const Seg* segs,
                                   int32_t nseg, int32_t aoff, int32_t woff, uint32_t sums[MR][NR]) {
  const __m256i aoff16 = _mm256_set1_epi16(static_cast<int16_t>(aoff));
  const __m256i woff16 = _mm256_set1_epi16(static_cast<int16_t>(woff));
  __m256i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  uint32_t tail[MR][NR] = {};
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
        av[i] = _mm256_add_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ap[i] + k))), aoff16);
      }
      for (int j = 0; j < NR; ++j) {
        __m256i bv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp[j] + k)));
        if (WOFF) bv = _mm256_add_epi16(bv, woff16);
        for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(av[i], bv));
      }
    }
    if (k + 8 <= sg.len) {
      const __m128i aoff8 = _mm256_castsi256_si128(aoff16);
      const __m128i woff8 = _mm256_castsi256_si128(woff16);
      __m128i av[MR];
      for (int i = 0; i < MR; ++i) {
        av[i] = _mm_add_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ap[i] + k))), aoff8);
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
        const int32_t x = ap[i][k] + aoff;
        for (int j = 0; j < NR; ++j) tail[i][j] += static_cast<uint32_t>(x * (wp[j][k] + woff));
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) sums[i][j] = static_cast<uint32_t>(hsum_epi32(acc[i][j])) + tail[i][j];
}

// Requantization of one block, identical to the portable kernels: wrap(bias + sum), then
// arm_nn_requantize_to_s8 with output channel j's multiplier/shift (mult_step 0: one per tensor).
template <int MR, int NR>
HARCORE_AVX2_INLINE void store_block(const uint32_t sums[MR][NR], const int32_t* bias, int32_t oc0,
                                     const int32_t* mult, const int32_t* shift, int32_t mult_step, int32_t out_off,
                                     int32_t act_min, int32_t act_max, int8_t* out, int64_t out_row_step) {
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const int32_t oc = oc0 + j;
      const uint32_t b = bias != nullptr ? static_cast<uint32_t>(bias[oc]) : 0u;
      const int32_t acc = static_cast<int32_t>(b + sums[i][j]);
      out[i * out_row_step + j] = arm_nn_requantize_to_s8(acc, mult[oc * mult_step], shift[oc * mult_step], out_off,
                                                          act_min, act_max);
    }
  }
}

// Everything one GEMM-like call needs: rows of activations (a + r * a_step), weight rows
// (w + oc * w_step), the segments each row reads, and the requantization.
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

template <int MR, int NR, bool WOFF>
HARCORE_AVX2_INLINE void run_block(const Gemm& g, const int8_t* a, int64_t a_step, const Seg* segs, int32_t nseg,
                                   int32_t oc0, int8_t* out, int64_t out_row_step) {
  const int8_t* wr[NR];
  for (int j = 0; j < NR; ++j) wr[j] = g.w + (oc0 + j) * g.w_step;
  uint32_t sums[MR][NR];
  block_dot<MR, NR, WOFF>(a, a_step, wr, segs, nseg, g.aoff, g.woff, sums);
  store_block<MR, NR>(sums, g.bias, oc0, g.mult, g.shift, g.mult_step, g.out_off, g.act_min, g.act_max,
                      out + oc0, out_row_step);
}

// `rows` activation rows (a + r * a_step) against output channels [oc_begin, oc_end), all reading the
// same segments; output row r at out + r * out_row_step, channel oc at + oc. MR x NR = 3 x 4 blocks
// (12 accumulators + 3 activation vectors + 1 weight vector fill the 16 ymm registers).
template <int MR, bool WOFF>
HARCORE_AVX2_INLINE void rows_mr(const Gemm& g, const int8_t* a, int64_t a_step, const Seg* segs, int32_t nseg,
                                 int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  int32_t oc = oc_begin;
  for (; oc + 4 <= oc_end; oc += 4) run_block<MR, 4, WOFF>(g, a, a_step, segs, nseg, oc, out, out_row_step);
  switch (oc_end - oc) {
    case 3: run_block<MR, 3, WOFF>(g, a, a_step, segs, nseg, oc, out, out_row_step); break;
    case 2: run_block<MR, 2, WOFF>(g, a, a_step, segs, nseg, oc, out, out_row_step); break;
    case 1: run_block<MR, 1, WOFF>(g, a, a_step, segs, nseg, oc, out, out_row_step); break;
    default: break;
  }
}

template <bool WOFF>
HARCORE_AVX2 void gemm_rows_t(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs,
                              int32_t nseg, int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  // Output-channel blocks outside, rows inside: a block's weights (4 rows of K) stay in L1 while the
  // activations stream past them.
  for (int32_t oc = oc_begin; oc < oc_end; oc += 4) {
    const int32_t oe = oc + 4 < oc_end ? oc + 4 : oc_end;
    int32_t r = 0;
    for (; r + 3 <= rows; r += 3) {
      rows_mr<3, WOFF>(g, a + r * a_step, a_step, segs, nseg, oc, oe, out + r * out_row_step, out_row_step);
    }
    if (rows - r == 2) rows_mr<2, WOFF>(g, a + r * a_step, a_step, segs, nseg, oc, oe, out + r * out_row_step, out_row_step);
    if (rows - r == 1) rows_mr<1, WOFF>(g, a + r * a_step, a_step, segs, nseg, oc, oe, out + r * out_row_step, out_row_step);
  }
}

inline void gemm_rows(const Gemm& g, const int8_t* a, int64_t a_step, int32_t rows, const Seg* segs, int32_t nseg,
                      int32_t oc_begin, int32_t oc_end, int8_t* out, int64_t out_row_step) {
  if (g.woff != 0) {
    gemm_rows_t<true>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  } else {
    gemm_rows_t<false>(g, a, a_step, rows, segs, nseg, oc_begin, oc_end, out, out_row_step);
  }
}

// Fully connected: out[b][o] for every batch row b (K = f->n values each). Returns false when this path
// does not apply (the caller then runs the portable loop); arguments are already checked.
inline bool fc_s8(const cmsis_nn_fc_params* p, const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f,
                  const int8_t* filter, const int32_t* bias, const cmsis_nn_dims* out, int8_t* output,
                  const int32_t* multiplier, const int32_t* shift, int32_t mult_step) {
  if (!simd_enabled() || f->n < 8) return false;
  const Gemm g{filter, f->n, bias, multiplier, shift, mult_step, p->input_offset, p->filter_offset,
               p->output_offset, p->activation.min, p->activation.max};
  const Seg seg{0, 0, f->n};
  gemm_rows(g, input, f->n, in->n, &seg, 1, 0, out->c, output, out->c);
  return true;
}

// Convolution (not grouped, dilation_w 1, at most kMaxSegs filter rows): every output pixel's window is
// one contiguous run of KW_valid * C_in input bytes per valid filter row (NHWC), read in place — no
// im2col. Pixels whose window lies inside the input in x share their segments and go through the 3 x 4
// blocks; the few at the left/right border get their own clipped segments. Returns false when the path
// does not apply.
inline bool conv_s8(const cmsis_nn_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                    const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f, const int8_t* filter,
                    const int32_t* bias, const cmsis_nn_dims* out, int8_t* output) {
  if (!simd_enabled()) return false;
  if (in->c != f->c || p->dilation.w != 1 || f->h > kMaxSegs) return false;
  const int32_t c = in->c;
  const int32_t row_len = f->w * c;
  if (row_len < 8) return false;  // too short a dot product for vectors to pay
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
  for (int32_t b = 0; b < in->n; ++b) {
    const int8_t* in_b = input + static_cast<int64_t>(b) * in->h * in->w * c;
    for (int32_t oy = 0; oy < out->h; ++oy) {
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

}  // namespace host
}  // namespace kernels
}  // namespace harcore

#endif  // HARCORE_HOST_KERNELS && x86-64
