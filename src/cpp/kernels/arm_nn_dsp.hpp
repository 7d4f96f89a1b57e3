// Cortex-M DSP-extension building blocks of the s8 kernels (internal to src/cpp/kernels).
//
// ARM_MATH_DSP is defined exactly where CMSIS-NN defines it: an Arm target whose compiler sets
// __ARM_FEATURE_DSP (GCC's -mcpu=cortex-m33; not cortex-m33+nodsp, M0 or M3, and never the x86 host
// build of the same files, which keeps the plain C paths). Everything below uses ACLE intrinsics
// (<arm_acle.h>) and one inline-asm form GCC 12's ACLE lacks (SXTB16 with its ROR #8 field).
//
// Exactness: the plain C kernels form int64 sums and wrap them to int32, i.e. they compute the sum modulo
// 2^32. SMLAD (Rd = Ra + lo*lo + hi*hi, result taken modulo 2^32; it only sets the sticky Q flag on
// overflow) and every other sum here are modulo 2^32 as well, and addition modulo 2^32 is associative and
// commutative, so any order of the products gives the same bits for every input. Each 16x16 product is
// exact: the operands are int8 values, or int8 values plus an offset in [-128, 128] (|v| <= 256, which
// SADD16 forms without overflowing a 16-bit lane).
#pragma once

#include <stdint.h>
#include <string.h>

#include "kernels/arm_nnsupportfunctions.hpp"

#if defined(__arm__) && defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#ifndef ARM_MATH_DSP
#define ARM_MATH_DSP 1
#endif
#include <arm_acle.h>
#endif

#if defined(ARM_MATH_DSP)

namespace harcore {
namespace kernels {
namespace dsp {

// Unaligned word loads/stores: memcpy of 4 bytes compiles to one LDR/STR (the M33 allows unaligned
// LDR/STR on normal memory; the firmware is built without -ffreestanding so memcpy stays a builtin).
inline int32_t read_s8x4(const int8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline int32_t read_s16x2(const int16_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline void write_s16x2(int16_t* p, int32_t v) { memcpy(p, &v, 4); }
inline void write_s8x4(int8_t* p, int32_t v) { memcpy(p, &v, 4); }

// Bytes 0 and 2 of v sign-extended into the two halfwords.
inline int32_t sxtb16(int32_t v) { return static_cast<int32_t>(__sxtb16(v)); }
// Bytes 1 and 3 of v sign-extended into the two halfwords (SXTB16 with ROR #8, one instruction).
inline int32_t sxtb16_ror8(int32_t v) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
// off2 + bytes 0 and 2 of v, per halfword (SXTAB16: the widening and an offset add in one instruction).
inline int32_t sxtab16(int32_t off2, int32_t v) { return static_cast<int32_t>(__sxtab16(off2, v)); }
// off2 + bytes 1 and 3 of v, per halfword.
inline int32_t sxtab16_ror8(int32_t off2, int32_t v) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(off2), "r"(v));
  return r;
}
inline int32_t smlad(int32_t a, int32_t b, int32_t acc) { return static_cast<int32_t>(__smlad(a, b, acc)); }
// acc + bottom(a) * bottom(b), acc + top(a) * top(b) (one 16x16 MAC each, result modulo 2^32).
inline int32_t smlabb(int32_t a, int32_t b, int32_t acc) { return static_cast<int32_t>(__smlabb(a, b, acc)); }
inline int32_t smlatt(int32_t a, int32_t b, int32_t acc) { return static_cast<int32_t>(__smlatt(a, b, acc)); }
// bottom(a) * bottom(b) and top(a) * top(b) (GCC 12's ACLE has no __smulbb / __smultt).
inline int32_t smulbb(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smulbb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
inline int32_t smultt(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smultt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
inline int32_t sadd16(int32_t a, int32_t b) { return static_cast<int32_t>(__sadd16(a, b)); }
// The offset in both halfwords.
inline int32_t pack_s16x2(int32_t v) {
  return static_cast<int32_t>((static_cast<uint32_t>(v) & 0xFFFFu) | (static_cast<uint32_t>(v) << 16));
}
// Bytewise signed max of a and b (SSUB8 sets the GE bit of every lane where a >= b, SEL picks by them).
inline int32_t max_s8x4(int32_t a, int32_t b) {
  (void)__ssub8(a, b);
  return static_cast<int32_t>(__sel(a, b));
}
// Bytewise signed min.
inline int32_t min_s8x4(int32_t a, int32_t b) {
  (void)__ssub8(a, b);
  return static_cast<int32_t>(__sel(b, a));
}

// (a * b + 2^31) >> 32 in one instruction.
__attribute__((always_inline)) inline int32_t smmulr(int32_t a, int32_t b) {
  int32_t h;
  __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"(a), "r"(b));
  return h;
}

// arm_nn_requantize_to_s8 for an activation range already checked to lie inside int8 (every kernel's
// argument check does that): the final int8 saturation is then a no-op and is left out. The common case, a
// shift in [-30, -1] and acc in [-2^30, 2^30) (tested per value), takes requantize_act_fast's SMMULR form:
// 2 acc fits in int32, |h| <= 2^30 for any int32 multiplier, and h + 2^(right-1) <= 2^30 + 2^29 does not
// overflow, so it gives the same value (the rest of the argument is at requantize_act_fast).
inline int8_t requantize_act(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset, int32_t act_min,
                             int32_t act_max) {
  int32_t r;
  if (static_cast<uint32_t>(shift) + 30u < 30u && static_cast<uint32_t>(acc) + 0x40000000u < 0x80000000u) {
    const int32_t h = smmulr(static_cast<int32_t>(static_cast<uint32_t>(acc) << 1), multiplier);
    const int32_t right = -shift;
    r = ((h + (int32_t{1} << (right - 1)) + (h >> 31)) >> right) + output_offset;
  } else {
    r = static_cast<int32_t>(static_cast<uint32_t>(arm_nn_requantize(acc, multiplier, shift)) +
                             static_cast<uint32_t>(output_offset));
  }
  r = r < act_min ? act_min : r;
  r = r > act_max ? act_max : r;
  return static_cast<int8_t>(r);
}

// The 2 x 2 block of arm_convolve_s8's DSP path: acc = {c0.w0, c1.w0, c0.w1, c1.w1} accumulated over
// `groups` groups of four values (groups >= 1). Columns are int16 in the convolution's group layout
// ([x0, x2], [x1, x3] per group; column 1 at col_stride_bytes from column 0), weight row 1 at row_len bytes
// from row 0. Assembly: the loop needs all 14 allocatable registers, and GCC's C version spilled five
// values per iteration (27 instead of 20 instructions per 16 MACs). Sums modulo 2^32 as everywhere here.
__attribute__((noinline)) inline void mac2x2_s16(const int16_t* col0, int32_t col_stride_bytes, const int8_t* w0,
                                                 int32_t row_len, int32_t groups, int32_t* acc) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  int32_t we0, wo0, we1, wo1, t;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[wo0], [%[w], %[L]]\n\t"
      "sxtb16 %[we1], %[wo0]\n\t"
      "sxtb16 %[wo1], %[wo0], ror #8\n\t"
      "ldr %[wo0], [%[w]], #4\n\t"
      "sxtb16 %[we0], %[wo0]\n\t"
      "sxtb16 %[wo0], %[wo0], ror #8\n\t"
      "ldr %[t], [%[c], %[S]]\n\t"
      "smlad %[a01], %[we0], %[t], %[a01]\n\t"
      "smlad %[a11], %[we1], %[t], %[a11]\n\t"
      "ldr %[t], [%[c]], #4\n\t"
      "smlad %[a00], %[we0], %[t], %[a00]\n\t"
      "smlad %[a10], %[we1], %[t], %[a10]\n\t"
      "ldr %[t], [%[c], %[S]]\n\t"
      "smlad %[a01], %[wo0], %[t], %[a01]\n\t"
      "smlad %[a11], %[wo1], %[t], %[a11]\n\t"
      "ldr %[t], [%[c]], #4\n\t"
      "smlad %[a00], %[wo0], %[t], %[a00]\n\t"
      "smlad %[a10], %[wo1], %[t], %[a10]\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [c] "+r"(col0), [w] "+r"(w0),
        [n] "+r"(groups), [we0] "=&r"(we0), [wo0] "=&r"(wo0), [we1] "=&r"(we1), [wo1] "=&r"(wo1), [t] "=&r"(t)
      : [S] "r"(col_stride_bytes), [L] "r"(row_len)
      : "cc", "memory");
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

// acc[0 .. rows) = src[0 .. rows) (0 where src is null), rows in 1 .. 4. Written out: GCC turns the copy
// loop into a call to memcpy, about 30 instructions for 16 bytes.
__attribute__((always_inline)) inline void init_acc4(int32_t* acc, const int32_t* src, int32_t rows) {
  acc[0] = acc[1] = acc[2] = acc[3] = 0;
  if (src == nullptr) return;
  acc[0] = src[0];
  if (rows > 1) acc[1] = src[1];
  if (rows > 2) acc[2] = src[2];
  if (rows > 3) acc[3] = src[3];
}

inline int32_t add_wrap(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// The dot products below: acc[r] += sum_k (x[k] + xoff) * w_r[k] for k < n, modulo 2^32, where weight row r
// starts at w + r * n. One word of x is widened once (its even and odd bytes, plus the offset, by SXTAB16)
// and serves every row; a weight word's SXTB16 even/odd split lines up with it, so one SMLAD pair does
// four MACs. XOFF false: xoff is ignored (raw int8 dot products, the LSTM/GRU gate matmuls). Not inlined:
// in a function of their own the pointers and accumulators stay in registers (inlined into the kernels,
// GCC spilled them inside the inner loop).
// The body of dot4_s8, for callers that fuse several of them into one function: acc_out[r] = acc_in[r] +
// sum_k (x[k] + xoff) * w_r[k] (acc_in and acc_out may be the same array).
template <bool XOFF>
__attribute__((always_inline)) inline void dot4_s8_body(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n,
                                                        const int32_t* acc_in, int32_t* acc_out) {
  const int32_t off2 = pack_s16x2(xoff);
  // Two base pointers, rows 1 and 3 addressed at +n. The loop body is written in assembly: in C, GCC
  // hoisted the four weight loads and spilled five values per iteration to the stack (31 instead of 23
  // instructions per 16 MACs). Same operations as the C of dot2_s8, four rows.
  const int8_t* wa = w;
  const int8_t* wb = w + 2 * n;
  int32_t a0 = acc_in[0], a1 = acc_in[1], a2 = acc_in[2], a3 = acc_in[3];
  for (int32_t i = n >> 2; i > 0; --i) {
    int32_t xe, xo, v, t;
    if (XOFF) {
      __asm__("ldr %[v], [%[x]], #4\n\t"
              "sxtab16 %[xe], %[off], %[v]\n\t"
              "sxtab16 %[xo], %[off], %[v], ror #8\n\t"
              : [v] "=&r"(v), [xe] "=&r"(xe), [xo] "=&r"(xo), [x] "+r"(x)
              : [off] "r"(off2)
              : "memory");
    } else {
      __asm__("ldr %[v], [%[x]], #4\n\t"
              "sxtb16 %[xe], %[v]\n\t"
              "sxtb16 %[xo], %[v], ror #8\n\t"
              : [v] "=&r"(v), [xe] "=&r"(xe), [xo] "=&r"(xo), [x] "+r"(x)
              :
              : "memory");
    }
    __asm__("ldr %[v], [%[wa], %[n]]\n\t"
            "sxtb16 %[t], %[v]\n\t"
            "smlad %[a1], %[t], %[xe], %[a1]\n\t"
            "sxtb16 %[t], %[v], ror #8\n\t"
            "smlad %[a1], %[t], %[xo], %[a1]\n\t"
            "ldr %[v], [%[wa]], #4\n\t"
            "sxtb16 %[t], %[v]\n\t"
            "smlad %[a0], %[t], %[xe], %[a0]\n\t"
            "sxtb16 %[t], %[v], ror #8\n\t"
            "smlad %[a0], %[t], %[xo], %[a0]\n\t"
            "ldr %[v], [%[wb], %[n]]\n\t"
            "sxtb16 %[t], %[v]\n\t"
            "smlad %[a3], %[t], %[xe], %[a3]\n\t"
            "sxtb16 %[t], %[v], ror #8\n\t"
            "smlad %[a3], %[t], %[xo], %[a3]\n\t"
            "ldr %[v], [%[wb]], #4\n\t"
            "sxtb16 %[t], %[v]\n\t"
            "smlad %[a2], %[t], %[xe], %[a2]\n\t"
            "sxtb16 %[t], %[v], ror #8\n\t"
            "smlad %[a2], %[t], %[xo], %[a2]\n\t"
            : [v] "=&r"(v), [t] "=&r"(t), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
              [wa] "+r"(wa), [wb] "+r"(wb)
            : [n] "r"(n), [xe] "r"(xe), [xo] "r"(xo)
            : "memory");
  }
  const int8_t* w0 = wa;
  const int8_t* w1 = wa + n;
  const int8_t* w2 = wb;
  const int8_t* w3 = wb + n;
  for (int32_t i = n & 3; i > 0; --i) {
    const int32_t xv = XOFF ? *x + xoff : *x;
    ++x;
    a0 = add_wrap(a0, xv * *w0++);
    a1 = add_wrap(a1, xv * *w1++);
    a2 = add_wrap(a2, xv * *w2++);
    a3 = add_wrap(a3, xv * *w3++);
  }
  acc_out[0] = a0;
  acc_out[1] = a1;
  acc_out[2] = a2;
  acc_out[3] = a3;
}

template <bool XOFF>
__attribute__((noinline)) void dot4_s8(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n, int32_t* acc) {
  dot4_s8_body<XOFF>(x, xoff, w, n, acc, acc);
}

template <bool XOFF>
__attribute__((noinline)) void dot2_s8(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n, int32_t* acc) {
  const int32_t off2 = pack_s16x2(xoff);
  const int8_t* w0 = w;
  const int8_t* w1 = w + n;
  int32_t a0 = acc[0], a1 = acc[1];
  for (int32_t i = n >> 2; i > 0; --i) {
    const int32_t xv = read_s8x4(x);
    x += 4;
    const int32_t xe = XOFF ? sxtab16(off2, xv) : sxtb16(xv);
    const int32_t xo = XOFF ? sxtab16_ror8(off2, xv) : sxtb16_ror8(xv);
    int32_t v = read_s8x4(w0);
    w0 += 4;
    a0 = smlad(sxtb16(v), xe, a0);
    a0 = smlad(sxtb16_ror8(v), xo, a0);
    v = read_s8x4(w1);
    w1 += 4;
    a1 = smlad(sxtb16(v), xe, a1);
    a1 = smlad(sxtb16_ror8(v), xo, a1);
  }
  for (int32_t i = n & 3; i > 0; --i) {
    const int32_t xv = XOFF ? *x + xoff : *x;
    ++x;
    a0 = add_wrap(a0, xv * *w0++);
    a1 = add_wrap(a1, xv * *w1++);
  }
  acc[0] = a0;
  acc[1] = a1;
}

template <bool XOFF>
__attribute__((noinline)) int32_t dot1_s8(const int8_t* x, int32_t xoff, const int8_t* w0, int32_t n, int32_t a0) {
  const int32_t off2 = pack_s16x2(xoff);
  for (int32_t i = n >> 2; i > 0; --i) {
    const int32_t xv = read_s8x4(x);
    x += 4;
    const int32_t v = read_s8x4(w0);
    w0 += 4;
    a0 = smlad(sxtb16(v), XOFF ? sxtab16(off2, xv) : sxtb16(xv), a0);
    a0 = smlad(sxtb16_ror8(v), XOFF ? sxtab16_ror8(off2, xv) : sxtb16_ror8(xv), a0);
  }
  for (int32_t i = n & 3; i > 0; --i) {
    const int32_t xv = XOFF ? *x + xoff : *x;
    ++x;
    a0 = add_wrap(a0, xv * *w0++);
  }
  return a0;
}

// acc[r] += sum_k (x[k] + xoff) * w_r[k] for `rows` consecutive weight rows (4, then 2, then 1 at a time).
template <bool XOFF>
inline void dot_rows_s8(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n, int32_t rows, int32_t* acc) {
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) dot4_s8<XOFF>(x, xoff, w + r * n, n, acc + r);
  if (r + 2 <= rows) {
    dot2_s8<XOFF>(x, xoff, w + r * n, n, acc + r);
    r += 2;
  }
  if (r < rows) acc[r] = dot1_s8<XOFF>(x, xoff, w + r * n, n, acc[r]);
}

// ---- One input vector times c_out weight rows, requantized per output (the 1x1 convolution's pixel, the
// fully connected layer's batch row) ----

// requantize_act for a shift in [-31, -1] and |acc| < 2^30 (rows_fast_ok checks both once per call): then
// 2 * acc fits in int32, SMMULR(2 acc, M) = (2 acc M + 2^31) >> 32 equals the doubling high multiply
// (acc M + 2^30) >> 31 for any int32 M, its result h has |h| < 2^30, and (h + 2^(r-1) + (h < 0 ? -1 : 0)) >> r,
// r = -shift >= 1, is arm_nn_divide_by_power_of_two's rounding (ties away from zero), without overflow.
__attribute__((always_inline)) inline int8_t requantize_act_fast(int32_t acc, int32_t multiplier, int32_t shift,
                                                                 int32_t output_offset, int32_t act_min,
                                                                 int32_t act_max) {
  const int32_t h = smmulr(static_cast<int32_t>(static_cast<uint32_t>(acc) << 1), multiplier);
  const int32_t right = -shift;
  const int32_t half = int32_t{1} << (right - 1);
  int32_t r = ((h + half + (h >> 31)) >> right) + output_offset;
  r = r < act_min ? act_min : r;
  r = r > act_max ? act_max : r;
  return static_cast<int8_t>(r);
}

// Whether requantize_act_fast is exact for every output of rows_requant_s8: every shift in [-31, -1] and
// |bias + sum_k (x[k] + xoff) w[k]| <= max |bias| + n * 255 * 128 < 2^30 (|x + xoff| <= 255, |w| <= 128).
inline bool rows_fast_ok(const int32_t* bias, const int32_t* shift, int32_t q_step, int32_t c_out, int32_t n) {
  int64_t m = 0;
  for (int32_t o = 0; o < c_out; ++o) {
    const int32_t s = shift[o * q_step];
    if (s > -1 || s < -31) return false;
    if (bias != nullptr) {
      const int64_t b = bias[o] < 0 ? -static_cast<int64_t>(bias[o]) : bias[o];
      m = b > m ? b : m;
    }
  }
  return m + static_cast<int64_t>(n) * 255 * 128 < (int64_t{1} << 30);
}

// y[o] = requantize(bias[o] + sum_k (x[k] + xoff) * w_o[k]) for o < c_out (row o at w + o * n), per-channel
// (q_step 1) or per-tensor (q_step 0) multipliers; the activation range lies inside int8. One function per
// vector with the four-row dot product inlined: no call per block of four outputs.
template <bool FAST>
__attribute__((always_inline)) inline void rows_requant_s8_body(const int8_t* x, int32_t xoff, const int8_t* w,
                                                                int32_t n, int32_t c_out, const int32_t* bias,
                                                                const int32_t* mult, const int32_t* shift,
                                                                int32_t q_step, int32_t out_off, int32_t act_min,
                                                                int32_t act_max, int8_t* y) {
  const auto rq = [&](int32_t acc, int32_t o) -> int8_t {
    const int32_t m = mult[o * q_step], s = shift[o * q_step];
    return FAST ? requantize_act_fast(acc, m, s, out_off, act_min, act_max)
                : requantize_act(acc, m, s, out_off, act_min, act_max);
  };
  int32_t o = 0;
  // full blocks of four outputs: the accumulators stay in registers from the dot product to the stores
  for (; o + 4 <= c_out; o += 4) {
    int32_t acc[4] = {0, 0, 0, 0};
    if (bias != nullptr) {
      acc[0] = bias[o];
      acc[1] = bias[o + 1];
      acc[2] = bias[o + 2];
      acc[3] = bias[o + 3];
    }
    dot4_s8_body<true>(x, xoff, w + o * n, n, acc, acc);
    y[o] = rq(acc[0], o);
    y[o + 1] = rq(acc[1], o + 1);
    y[o + 2] = rq(acc[2], o + 2);
    y[o + 3] = rq(acc[3], o + 3);
  }
  if (o < c_out) {
    const int32_t rows = c_out - o;
    int32_t acc[4];
    init_acc4(acc, bias != nullptr ? bias + o : nullptr, rows);
    dot_rows_s8<true>(x, xoff, w + o * n, n, rows, acc);
    for (int32_t r = 0; r < rows; ++r) y[o + r] = rq(acc[r], o + r);
  }
}

// rows_requant_s8 over `pixels` consecutive input vectors (x advancing by n, y by c_out): the 1x1
// convolution, with the per-call parameters set up once rather than per pixel.
template <bool FAST>
__attribute__((noinline)) void pixels_requant_s8(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n,
                                                 int32_t c_out, int32_t pixels, const int32_t* bias,
                                                 const int32_t* mult, const int32_t* shift, int32_t out_off,
                                                 int32_t act_min, int32_t act_max, int8_t* y) {
  if (n == 1) {  // one input channel (a 1x1 conv straight after the input): no dot products at all
    for (int32_t p = 0; p < pixels; ++p, y += c_out) {
      const int32_t xv = x[p] + xoff;
      for (int32_t o = 0; o < c_out; ++o) {
        const int32_t acc = add_wrap(bias != nullptr ? bias[o] : 0, xv * w[o]);
        y[o] = FAST ? requantize_act_fast(acc, mult[o], shift[o], out_off, act_min, act_max)
                    : requantize_act(acc, mult[o], shift[o], out_off, act_min, act_max);
      }
    }
    return;
  }
  for (int32_t p = 0; p < pixels; ++p, x += n, y += c_out) {
    rows_requant_s8_body<FAST>(x, xoff, w, n, c_out, bias, mult, shift, 1, out_off, act_min, act_max, y);
  }
}

template <bool FAST>
__attribute__((noinline)) void rows_requant_s8(const int8_t* x, int32_t xoff, const int8_t* w, int32_t n,
                                               int32_t c_out, const int32_t* bias, const int32_t* mult,
                                               const int32_t* shift, int32_t q_step, int32_t out_off, int32_t act_min,
                                               int32_t act_max, int8_t* y) {
  rows_requant_s8_body<FAST>(x, xoff, w, n, c_out, bias, mult, shift, q_step, out_off, act_min, act_max, y);
}

// ---- Elementwise requantizations (add, sub, mul): one (multiplier, shift <= 0) pair applied to many values,
// with a bound on the values known per call ----

// arm_nn_requantize(v, mult, shift) for shift in [-31, 0] and |v| < 2^30: SMMULR(2v, M) is the doubling high
// multiply (|h| < 2^30 for any M), then the rounding divide by 2^right with the half and the negative-value
// correction precomputed (both 0 for right == 0), which cannot overflow since |h| + 2^30 - 1 < 2^31.
struct RqPot {
  int32_t mult, right, half, negmask;
};
inline RqPot rq_pot(int32_t mult, int32_t shift) {
  const int32_t right = -shift;
  return RqPot{mult, right, right > 0 ? int32_t{1} << (right - 1) : 0, right > 0 ? -1 : 0};
}
__attribute__((always_inline)) inline int32_t rq_pot_apply(int32_t v, const RqPot& q) {
  const int32_t h = smmulr(static_cast<int32_t>(static_cast<uint32_t>(v) << 1), q.mult);
  return (h + q.half + ((h >> 31) & q.negmask)) >> q.right;
}

// The add / sub scheme (docs/cmsis-nn.md §4.7) on four lanes' worth of values at a time is not needed: the
// three requantizations dominate. Values: |(x + off) * 2^ls| <= 255 * 2^ls < 2^30 for ls <= 21; the scaled
// inputs keep |a|, |b| <= 255 * 2^ls (|h| <= |v| since |M| <= 2^31), so |a +- b| < 2^30 for ls <= 20.
inline bool add_fast_ok(int32_t s1, int32_t s2, int32_t s_out, int32_t left_shift) {
  return s1 <= 0 && s1 >= -31 && s2 <= 0 && s2 >= -31 && s_out <= 0 && s_out >= -31 && left_shift >= 0 &&
         left_shift <= 20;
}

template <bool SUB>
__attribute__((noinline)) void add_sub_fast_s8(const int8_t* x1, const int8_t* x2, int32_t off1, int32_t m1,
                                               int32_t s1, int32_t off2, int32_t m2, int32_t s2, int32_t left_shift,
                                               int8_t* y, int32_t out_off, int32_t m_out, int32_t s_out,
                                               int32_t act_min, int32_t act_max, int32_t n) {
  const RqPot q1 = rq_pot(m1, s1), q2 = rq_pot(m2, s2), qo = rq_pot(m_out, s_out);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t a = rq_pot_apply(static_cast<int32_t>(static_cast<uint32_t>(x1[i] + off1) << left_shift), q1);
    const int32_t b = rq_pot_apply(static_cast<int32_t>(static_cast<uint32_t>(x2[i] + off2) << left_shift), q2);
    int32_t r = rq_pot_apply(SUB ? a - b : a + b, qo) + out_off;
    r = r < act_min ? act_min : r;
    r = r > act_max ? act_max : r;
    y[i] = static_cast<int8_t>(r);
  }
}

// mul: |(x1 + off1) (x2 + off2)| <= 255^2 < 2^30, so any shift in [-31, 0] is fast. With an activation range
// inside int8 (checked by the caller: the plain path's int32 clamp followed by the int8 cast would otherwise
// wrap), four values a word: SXTAB16 widens two bytes and adds the offset (|x + off| <= 255 fits a halfword),
// SMULBB / SMULTT multiply, and SSAT to 8 bits before the bytewise clamp changes nothing inside that range.
// Inlined: the broadcasting MULs call it once per short row, where a call's argument marshalling showed.
__attribute__((always_inline)) inline void mul_fast_s8(const int8_t* x1, const int8_t* x2, int32_t off1, int32_t off2,
                                                       int8_t* y, int32_t out_off, int32_t m_out, int32_t s_out,
                                                       int32_t act_min, int32_t act_max, int32_t n) {
  const RqPot qo = rq_pot(m_out, s_out);
  int32_t i = 0;
  if (act_min >= -128 && act_max <= 127) {
    const int32_t o1 = pack_s16x2(off1), o2 = pack_s16x2(off2);
    const int32_t lo = static_cast<int32_t>((static_cast<uint32_t>(act_min) & 0xFFu) * 0x01010101u);
    const int32_t hi = static_cast<int32_t>((static_cast<uint32_t>(act_max) & 0xFFu) * 0x01010101u);
    for (; i + 4 <= n; i += 4) {
      const int32_t a = read_s8x4(x1 + i), b = read_s8x4(x2 + i);
      const int32_t a02 = sxtab16(o1, a), a13 = sxtab16_ror8(o1, a);
      const int32_t b02 = sxtab16(o2, b), b13 = sxtab16_ror8(o2, b);
      const int32_t r0 = __ssat(rq_pot_apply(smulbb(a02, b02), qo) + out_off, 8);
      const int32_t r1 = __ssat(rq_pot_apply(smulbb(a13, b13), qo) + out_off, 8);
      const int32_t r2 = __ssat(rq_pot_apply(smultt(a02, b02), qo) + out_off, 8);
      const int32_t r3 = __ssat(rq_pot_apply(smultt(a13, b13), qo) + out_off, 8);
      const uint32_t packed = (static_cast<uint32_t>(r0) & 0xFFu) | ((static_cast<uint32_t>(r1) & 0xFFu) << 8) |
                              ((static_cast<uint32_t>(r2) & 0xFFu) << 16) | (static_cast<uint32_t>(r3) << 24);
      write_s8x4(y + i, min_s8x4(max_s8x4(static_cast<int32_t>(packed), lo), hi));
    }
  }
  for (; i < n; ++i) {
    int32_t r = rq_pot_apply((x1[i] + off1) * (x2[i] + off2), qo) + out_off;
    r = r < act_min ? act_min : r;
    r = r > act_max ? act_max : r;
    y[i] = static_cast<int8_t>(r);
  }
}

}  // namespace dsp
}  // namespace kernels
}  // namespace harcore

#endif  // ARM_MATH_DSP
