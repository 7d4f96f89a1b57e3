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

inline int32_t add_wrap(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// acc0 += sum_k (x[k] + xoff) * w0[k], acc1 likewise with w1, k < n, modulo 2^32. One word of x is
// widened once (even and odd bytes) and serves both rows; the weights' even/odd split matches it.
// XOFF false: xoff is ignored (raw int8 dot products, the LSTM/GRU gate matmuls).
template <bool XOFF>
inline void dot2_s8(const int8_t* x, int32_t xoff, const int8_t* w0, const int8_t* w1, int32_t n, int32_t& acc0,
                    int32_t& acc1) {
  const int32_t off2 = pack_s16x2(xoff);
  int32_t a0 = acc0, a1 = acc1;
  int32_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const int32_t xv = read_s8x4(x + k);
    const int32_t xe = XOFF ? sxtab16(off2, xv) : sxtb16(xv);
    const int32_t xo = XOFF ? sxtab16_ror8(off2, xv) : sxtb16_ror8(xv);
    const int32_t v0 = read_s8x4(w0 + k);
    a0 = smlad(sxtb16(v0), xe, a0);
    a0 = smlad(sxtb16_ror8(v0), xo, a0);
    const int32_t v1 = read_s8x4(w1 + k);
    a1 = smlad(sxtb16(v1), xe, a1);
    a1 = smlad(sxtb16_ror8(v1), xo, a1);
  }
  for (; k < n; ++k) {
    const int32_t xv = XOFF ? x[k] + xoff : x[k];
    a0 = add_wrap(a0, xv * w0[k]);
    a1 = add_wrap(a1, xv * w1[k]);
  }
  acc0 = a0;
  acc1 = a1;
}

// acc0 += sum_k (x[k] + xoff) * w0[k], k < n, modulo 2^32.
template <bool XOFF>
inline int32_t dot1_s8(const int8_t* x, int32_t xoff, const int8_t* w0, int32_t n, int32_t acc0) {
  const int32_t off2 = pack_s16x2(xoff);
  int32_t a0 = acc0;
  int32_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const int32_t xv = read_s8x4(x + k);
    const int32_t xe = XOFF ? sxtab16(off2, xv) : sxtb16(xv);
    const int32_t xo = XOFF ? sxtab16_ror8(off2, xv) : sxtb16_ror8(xv);
    const int32_t v0 = read_s8x4(w0 + k);
    a0 = smlad(sxtb16(v0), xe, a0);
    a0 = smlad(sxtb16_ror8(v0), xo, a0);
  }
  for (; k < n; ++k) a0 = add_wrap(a0, (XOFF ? x[k] + xoff : x[k]) * w0[k]);
  return a0;
}

}  // namespace dsp
}  // namespace kernels
}  // namespace harcore

#endif  // ARM_MATH_DSP
