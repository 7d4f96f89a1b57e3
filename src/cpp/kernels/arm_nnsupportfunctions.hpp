// Integer support arithmetic of the s8 kernels (docs/cmsis-nn.md §3, §4.6), written from the published
// formulas (TFLite's MultiplyByQuantizedMultiplier with double rounding, gemmlowp's fixed-point exp and
// reciprocal). Header-only; compiles unchanged for the Cortex-M33 firmware.
//
// Freedom from undefined behaviour: no left shift of a negative value (values are scaled through uint32,
// i.e. multiplied modulo 2^32), no shift by 32 or more (shift amounts are clamped to [0, 31]), no signed
// overflow (sums that may leave int32 are formed in int64 and wrapped through uint32 explicitly, which is
// what the reference C code does in practice). Right shifts of negative values are arithmetic (floor), as
// on every compiler we build with (and as C++20 defines).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {

constexpr int32_t NN_Q31_MAX = INT32_MAX;
constexpr int32_t NN_Q31_MIN = INT32_MIN;

// Shift amounts are clamped to [0, 31] so that no shift is undefined.
inline int32_t arm_nn_shift_amount(int32_t s) { return s < 0 ? 0 : (s > 31 ? 31 : s); }

// Modulo-2^32 wrap of an int64 into int32 (two's complement).
inline int32_t arm_nn_wrap_s32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

// v * 2^e modulo 2^32 (TFLite's `x * (1 << e)`), e in [0, 31].
inline int32_t arm_nn_mul_pot_wrap(int32_t v, int32_t e) {
  return static_cast<int32_t>(static_cast<uint32_t>(v) << arm_nn_shift_amount(e));
}

// Clamp: max with lo first, then min with hi (the order the kernels use).
inline int32_t arm_nn_clamp(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// Saturating cast to int8.
inline int8_t arm_nn_sat_s8(int32_t v) { return static_cast<int8_t>(arm_nn_clamp(v, INT8_MIN, INT8_MAX)); }

// Rounding doubling high multiply without saturation: floor((a*b + 2^30) / 2^31). Equal to gemmlowp's
// SaturatingRoundingDoublingHighMul except for a = b = INT32_MIN (where the result 2^31 wraps).
inline int32_t arm_nn_doubling_high_mult_no_sat(int32_t a, int32_t b) {
  const int64_t p = static_cast<int64_t>(a) * static_cast<int64_t>(b) + (int64_t{1} << 30);
  return arm_nn_wrap_s32(p >> 31);
}

// Saturating rounding doubling high multiply (gemmlowp): INT32_MAX for a = b = INT32_MIN.
inline int32_t arm_nn_doubling_high_mult(int32_t a, int32_t b) {
  if (a == NN_Q31_MIN && b == NN_Q31_MIN) return NN_Q31_MAX;
  return arm_nn_doubling_high_mult_no_sat(a, b);
}

// x / 2^e rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT); e clamped to [0, 31].
// gemmlowp writes it (x >> e) + (remainder > threshold); the same value is floor((x + 2^(e-1)) / 2^e) for
// x >= 0 and floor((x + 2^(e-1) - 1) / 2^e) for x < 0, which takes a few instructions on a 32-bit core
// instead of a dozen. Neither sum overflows: for x >= 0 it is formed in uint32 (below 2^31 + 2^30), for
// x < 0 it stays in [INT32_MIN, 2^30). tests/test_firmware_kernels_dsp.py compares both forms.
inline int32_t arm_nn_divide_by_power_of_two(int32_t x, int32_t e) {
  e = arm_nn_shift_amount(e);
  if (e == 0) return x;
  const uint32_t half = uint32_t{1} << (e - 1);
  if (x >= 0) return static_cast<int32_t>((static_cast<uint32_t>(x) + half) >> e);
  return (x + static_cast<int32_t>(half - 1)) >> e;
}

// Requantization with double rounding (TFLite MultiplyByQuantizedMultiplier, CMSIS-NN default):
// shift > 0 multiplies by 2^shift first (modulo 2^32), shift < 0 divides by 2^-shift with rounding after
// the high multiply.
inline int32_t arm_nn_requantize(int32_t val, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift < 0 ? -shift : 0;
  return arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult_no_sat(arm_nn_mul_pot_wrap(val, left), multiplier),
                                       right);
}

// Requantize an int32 accumulator, add the output offset and clamp to the activation range.
inline int8_t arm_nn_requantize_to_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                      int32_t act_min, int32_t act_max) {
  const int32_t r = arm_nn_wrap_s32(static_cast<int64_t>(arm_nn_requantize(acc, multiplier, shift)) + output_offset);
  return arm_nn_sat_s8(arm_nn_clamp(r, act_min, act_max));
}

// ---- gemmlowp-style fixed point (Q(int_bits).(31 - int_bits) in an int32) for softmax ------------------

// Saturating x * 2^e for e in [0, 31) (gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent).
inline int32_t arm_nn_sat_mul_pot(int32_t x, int32_t e) {
  e = arm_nn_shift_amount(e);
  if (e == 0) return x;
  const int32_t threshold = static_cast<int32_t>((int64_t{1} << (31 - e)) - 1);
  if (x > threshold) return NN_Q31_MAX;
  if (x < -threshold) return NN_Q31_MIN;
  return arm_nn_mul_pot_wrap(x, e);
}

// Fixed-point add / subtract (raw int32 add; wraps instead of overflowing).
inline int32_t arm_nn_add_q31(int32_t a, int32_t b) {
  return arm_nn_wrap_s32(static_cast<int64_t>(a) + static_cast<int64_t>(b));
}
inline int32_t arm_nn_sub_q31(int32_t a, int32_t b) {
  return arm_nn_wrap_s32(static_cast<int64_t>(a) - static_cast<int64_t>(b));
}

// exp(a) for a in [-1/4, 0), a in Q0.31 -> Q0.31 (Taylor expansion around -1/8).
inline int32_t arm_nn_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668;       // exp(-1/8) in Q0.31
  const int32_t constant_1_over_3 = 715827883;    // 1/3 in Q0.31
  const int32_t x = arm_nn_add_q31(a, int32_t{1} << 28);  // a + 1/8
  const int32_t x2 = arm_nn_doubling_high_mult(x, x);
  const int32_t x3 = arm_nn_doubling_high_mult(x2, x);
  const int32_t x4 = arm_nn_doubling_high_mult(x2, x2);
  const int32_t x4_over_4 = arm_nn_divide_by_power_of_two(x4, 2);
  const int32_t poly = arm_nn_divide_by_power_of_two(
      arm_nn_add_q31(arm_nn_doubling_high_mult(arm_nn_add_q31(x4_over_4, x3), constant_1_over_3), x2), 1);
  return arm_nn_add_q31(constant_term, arm_nn_doubling_high_mult(constant_term, arm_nn_add_q31(x, poly)));
}

// exp(a) for a <= 0 given in Q(int_bits).(31 - int_bits), result in Q0.31 (gemmlowp exp_on_negative_values).
// int_bits in [1, 29] (other values give 0); softmax uses 5.
inline int32_t arm_nn_exp_on_negative_values(int32_t a, int32_t int_bits) {
  if (int_bits < 1 || int_bits > 29) return 0;  // outside the supported formats (keeps every shift defined)
  const int32_t frac_bits = 31 - int_bits;
  const int32_t one_quarter = int32_t{1} << (frac_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
  int32_t result = arm_nn_exp_on_interval_between_negative_one_quarter_and_0_excl(
      arm_nn_sat_mul_pot(a_mod_quarter_minus_one_quarter, int_bits));
  const int32_t remainder = arm_nn_sub_q31(a_mod_quarter_minus_one_quarter, a);
  // exp(-2^k) for k = -2 .. 4, in Q0.31
  static const int32_t kBarrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  for (int32_t k = -2; k <= 4; ++k) {
    if (int_bits > k) {
      const int32_t bit = frac_bits + k;
      if (bit >= 0 && bit < 31 && (remainder & (int32_t{1} << bit)) != 0) {
        result = arm_nn_doubling_high_mult(result, kBarrel[k + 2]);
      }
    }
  }
  if (int_bits > 5) {
    const int32_t clamp_shift = 36 - int_bits;  // -32 in Q(int_bits)
    const int32_t clamp_value = static_cast<int32_t>(-(int64_t{1} << clamp_shift));
    if (a < clamp_value) result = 0;
  }
  if (a == 0) result = NN_Q31_MAX;
  return result;
}

// 1 / (1 + x) for x in [0, 1), Q0.31 in and out (gemmlowp one_over_one_plus_x_for_x_in_0_1:
// Newton-Raphson in Q2.29, three iterations).
inline int32_t arm_nn_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  // rounding half sum of a and 1 (Q0.31 one = INT32_MAX)
  const int64_t sum = static_cast<int64_t>(a) + NN_Q31_MAX;
  const int32_t half_denominator = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  const int32_t constant_48_over_17 = 1515870810;    // Q2.29
  const int32_t constant_neg_32_over_17 = -1010580540;  // Q2.29
  int32_t x = arm_nn_add_q31(constant_48_over_17, arm_nn_doubling_high_mult(half_denominator, constant_neg_32_over_17));
  const int32_t one_q29 = int32_t{1} << 29;
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = arm_nn_doubling_high_mult(half_denominator, x);
    const int32_t one_minus = arm_nn_sub_q31(one_q29, half_denominator_times_x);
    x = arm_nn_add_q31(x, arm_nn_sat_mul_pot(arm_nn_doubling_high_mult(x, one_minus), 2));
  }
  return arm_nn_sat_mul_pot(x, 1);
}

// Count of leading zero bits of a uint32 (32 for 0).
inline int32_t arm_nn_clz(uint32_t v) {
  int32_t n = 0;
  if (v == 0) return 32;
  while ((v & 0x80000000u) == 0) {
    v <<= 1;
    ++n;
  }
  return n;
}

}  // namespace kernels
}  // namespace harcore
