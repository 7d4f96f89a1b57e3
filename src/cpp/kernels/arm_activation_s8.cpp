// int8 LOGISTIC and TANH as TFLM computes them (reference_integer_ops::Logistic / Tanh): the input
// (x - zp) is rescaled to Q4.27, gemmlowp's fixed-point logistic / tanh gives Q0.31, rounded to Q0.8
// (logistic, output zero point -128) or Q0.7 (tanh, zero point 0); inputs beyond +-input_range_radius
// saturate. Parameters: see cmsis_nn_lut_act_params (arm_nn_gru.hpp), derived in harcore/quant/lower.py.
#include "kernels/arm_nn_gru.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {
namespace {

// gemmlowp RoundingHalfSum for int32
int32_t rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = static_cast<int64_t>(a) + b;
  return static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
}

// (1 - x) / (1 + x) for x in [0, 1), Q0.31 in and out (gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1:
// Newton-Raphson for 1 / (1 + x) in Q2.29, then minus one).
int32_t one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = rounding_half_sum(a, NN_Q31_MAX);
  const int32_t constant_48_over_17 = 1515870810;       // Q2.29
  const int32_t constant_neg_32_over_17 = -1010580540;  // Q2.29
  int32_t x = arm_nn_add_q31(constant_48_over_17, arm_nn_doubling_high_mult(half_denominator, constant_neg_32_over_17));
  const int32_t one_q29 = int32_t{1} << 29;
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = arm_nn_doubling_high_mult(half_denominator, x);
    const int32_t one_minus = arm_nn_sub_q31(one_q29, half_denominator_times_x);
    x = arm_nn_add_q31(x, arm_nn_sat_mul_pot(arm_nn_doubling_high_mult(x, one_minus), 2));
  }
  return arm_nn_sat_mul_pot(arm_nn_sub_q31(x, one_q29), 2);
}

// gemmlowp logistic of a Q4.27 value -> Q0.31
int32_t logistic_q4(int32_t a) {
  if (a == 0) return int32_t{1} << 30;
  const int32_t abs_a = a > 0 ? a : arm_nn_wrap_s32(-static_cast<int64_t>(a));
  const int32_t pos = arm_nn_one_over_one_plus_x_for_x_in_0_1(
      arm_nn_exp_on_negative_values(arm_nn_wrap_s32(-static_cast<int64_t>(abs_a)), 4));
  return a > 0 ? pos : arm_nn_sub_q31(NN_Q31_MAX, pos);
}

// gemmlowp tanh of a Q4.27 value -> Q0.31
int32_t tanh_q4(int32_t a) {
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : arm_nn_wrap_s32(-static_cast<int64_t>(a));  // -|a|
  // exp(2n): the same raw value read with one more integer bit
  const int32_t t = one_minus_x_over_one_plus_x_for_x_in_0_1(arm_nn_exp_on_negative_values(n, 5));
  return a < 0 ? arm_nn_wrap_s32(-static_cast<int64_t>(t)) : t;
}

bool params_ok(const cmsis_nn_lut_act_params* p) {
  return p != nullptr && p->input_zero_point >= -128 && p->input_zero_point <= 127 && p->input_range_radius >= 0 &&
         p->input_multiplier >= 0 && p->input_left_shift >= -31 && p->input_left_shift <= 30;
}

// Q4.27 -> int8 output: logistic rounds Q0.31 to Q0.8 with zero point -128, tanh to Q0.7 with zero point 0.
int8_t logistic_s8(int32_t q4) { return arm_nn_sat_s8(arm_nn_divide_by_power_of_two(logistic_q4(q4), 23) - 128); }
int8_t tanh_s8(int32_t q4) { return arm_nn_sat_s8(arm_nn_divide_by_power_of_two(tanh_q4(q4), 24)); }

// The shared element loop: (x - zp) saturates beyond +-input_range_radius, else is rescaled to Q4.27 for Out
// (a template argument so that it inlines into the loop).
template <int8_t (*Out)(int32_t)>
arm_cmsis_nn_status lut_act_s8(const int8_t* input, int8_t* output, int32_t size,
                               const cmsis_nn_lut_act_params* params) {
  if (input == nullptr || output == nullptr || size < 0 || !params_ok(params)) return ARM_CMSIS_NN_ARG_ERROR;
  for (int32_t i = 0; i < size; ++i) {
    const int32_t x = static_cast<int32_t>(input[i]) - params->input_zero_point;
    if (x <= -params->input_range_radius) {
      output[i] = INT8_MIN;
    } else if (x >= params->input_range_radius) {
      output[i] = INT8_MAX;
    } else {
      output[i] = Out(arm_nn_requantize(x, params->input_multiplier, params->input_left_shift));
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace

arm_cmsis_nn_status arm_logistic_s8(const int8_t* input, int8_t* output, int32_t size,
                                    const cmsis_nn_lut_act_params* params) {
  return lut_act_s8<logistic_s8>(input, output, size, params);
}

arm_cmsis_nn_status arm_tanh_s8(const int8_t* input, int8_t* output, int32_t size,
                                const cmsis_nn_lut_act_params* params) {
  return lut_act_s8<tanh_s8>(input, output, size, params);
}

}  // namespace kernels
}  // namespace harcore
