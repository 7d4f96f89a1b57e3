// harcore's s8 GRU and the int8 elementwise kernels it is built from (TFLite int8 builtin-op arithmetic:
// MUL, SUB, LOGISTIC, TANH as TFLM's reference_integer_ops compute them; FULLY_CONNECTED and ADD are the
// existing arm_fully_connected_per_channel_s8 / arm_elementwise_add_s8). The scheme is documented in
// docs/int8.md ("The GRU scheme"). Same rules as the other kernels: fixed-width types, no heap, no
// exceptions, no RTTI, no float; status codes.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {

// TFLite ADD / SUB int8 parameters (left_shift 20 scheme; multipliers from QuantizeMultiplier).
struct cmsis_nn_add_params {
  int32_t input1_offset;  // -zp_1
  int32_t input1_mult;
  int32_t input1_shift;
  int32_t input2_offset;  // -zp_2
  int32_t input2_mult;
  int32_t input2_shift;
  int32_t left_shift;
  int32_t output_offset;  // +zp_out
  int32_t output_mult;
  int32_t output_shift;
};

// TFLite MUL int8: out = zp_out + rq((a - zp_a) * (b - zp_b), mult, shift), mult/shift of s_a * s_b / s_out.
struct cmsis_nn_mul_params {
  int32_t input1_offset;  // -zp_1
  int32_t input2_offset;  // -zp_2
  int32_t output_offset;  // +zp_out
  int32_t output_mult;
  int32_t output_shift;
};

// TFLM int8 LOGISTIC / TANH: input rescaled to Q4.27 by (input_multiplier, input_left_shift) from
// s_in * 2^27 (frexp, no folding), saturated outside +-input_range_radius. Output LOGISTIC (1/256, -128),
// TANH (1/128, 0).
struct cmsis_nn_lut_act_params {
  int32_t input_zero_point;
  int32_t input_range_radius;
  int32_t input_multiplier;
  int32_t input_left_shift;
};

// One per-channel FULLY_CONNECTED of `hidden_size` rows (weights [H, K] row-major).
struct cmsis_nn_gru_fc {
  const int8_t* weights;
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* shift;
  int32_t output_offset;  // +zp of this FC's output
};

struct cmsis_nn_gru_params {
  int32_t time_steps;
  int32_t input_size;
  int32_t hidden_size;
  int32_t reverse;        // 1: process t = T-1 .. 0 (backward direction), reading and writing row t
  int32_t output_stride;  // elements between consecutive output rows (>= hidden_size; 2H for a bidirectional half)
  int32_t input_offset;   // -zp of the input
  int32_t hidden_zero_point;  // zp of the hidden state = of the output; the state starts at it
  cmsis_nn_gru_fc x_fc[3];    // gates r, z, n on the input row
  cmsis_nn_gru_fc h_fc[3];    // gates r, z, n on the previous hidden state
  cmsis_nn_add_params add_r;  // r_pre = gx_r + gh_r
  cmsis_nn_add_params add_z;  // z_pre = gx_z + gh_z
  cmsis_nn_lut_act_params sig_r;
  cmsis_nn_lut_act_params sig_z;
  cmsis_nn_mul_params mul_rn;   // rn = r * gh_n
  cmsis_nn_add_params add_n;    // n_pre = gx_n + rn
  cmsis_nn_lut_act_params tanh_n;
  cmsis_nn_add_params sub_d;    // d = h - n
  cmsis_nn_mul_params mul_zd;   // zd = z * d
  cmsis_nn_add_params add_h;    // h' = n + zd (output quantization)
};

// ---- elementwise int8 kernels (same-shape operands; in place allowed) --------------------------------
arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_2_offset, int8_t* output,
                                           int32_t out_offset, int32_t out_mult, int32_t out_shift,
                                           int32_t out_activation_min, int32_t out_activation_max,
                                           int32_t block_size);
// TFLite SUB: input_1 - input_2, ADD's arithmetic with the second scaled input subtracted.
arm_cmsis_nn_status arm_elementwise_sub_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_1_mult, int32_t input_1_shift,
                                           int32_t input_2_offset, int32_t input_2_mult, int32_t input_2_shift,
                                           int32_t left_shift, int8_t* output, int32_t out_offset,
                                           int32_t out_mult, int32_t out_shift, int32_t out_activation_min,
                                           int32_t out_activation_max, int32_t block_size);
arm_cmsis_nn_status arm_logistic_s8(const int8_t* input, int8_t* output, int32_t size,
                                    const cmsis_nn_lut_act_params* params);
arm_cmsis_nn_status arm_tanh_s8(const int8_t* input, int8_t* output, int32_t size,
                                const cmsis_nn_lut_act_params* params);

// ---- GRU ------------------------------------------------------------------------------------------
// Unidirectional s8 GRU over a whole sequence (batch 1); input [T, input_size], output rows of
// hidden_size at output + t * output_stride. ctx->buf: arm_gru_unidirectional_s8_get_buffer_size(H, 1)
// bytes (9H int8 temporaries). The state starts at the hidden zero point on every call.
arm_cmsis_nn_status arm_gru_unidirectional_s8(const cmsis_nn_context* ctx, const int8_t* input,
                                              const cmsis_nn_gru_params* params, int8_t* output);

}  // namespace kernels
}  // namespace harcore
