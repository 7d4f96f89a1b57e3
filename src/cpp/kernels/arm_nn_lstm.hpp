// Argument structs and entry points of the s8 LSTM (arm_lstm_unidirectional_s8.cpp) and of its int16
// sigmoid/tanh (arm_nn_activation_s16), following TFLM's integer UNIDIRECTIONAL_SEQUENCE_LSTM, the
// "8x8->16" scheme (docs/cmsis-nn.md §4.9). Same rules as the other kernels: fixed-width types, no heap, no
// exceptions, no RTTI, no float; status codes.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {

enum arm_nn_activation_type : int32_t {
  ARM_SIGMOID = 0,
  ARM_TANH = 1,
};

// One LSTM gate. Weights are row-major: input weights [hidden, input], hidden (recurrent) weights
// [hidden, hidden]. The kernel multiplies raw int8 values; the zero points are folded into the
// effective biases, computed once by the caller:
//   input_effective_bias[h]  = bias[h] + input_offset * sum_i input_weights[h, i]      (input_offset = -zp_in)
//   hidden_effective_bias[h] = -output_offset * sum_j hidden_weights[h, j]             (output_offset = +zp_out)
// Both products are requantized separately to Q3.12 (scale 2^-12): multiplier/shift from
// s_in * s_w_in / 2^-12 and s_out * s_w_hidden / 2^-12 (double precision, QuantizeMultiplier).
struct cmsis_nn_lstm_gate {
  int32_t input_multiplier;
  int32_t input_shift;
  const int8_t* input_weights;
  const int32_t* input_effective_bias;
  int32_t hidden_multiplier;
  int32_t hidden_shift;
  const int8_t* hidden_weights;
  const int32_t* hidden_effective_bias;
  arm_nn_activation_type activation_type;
};

struct cmsis_nn_lstm_params {
  int32_t time_major;  // 1: input [T, B, I] / output [T, B, H]; 0: input [B, T, I] / output [B, T, H]
  int32_t batch_size;
  int32_t time_steps;
  int32_t input_size;
  int32_t hidden_size;
  int32_t input_offset;               // -zp_in, [-127, 128]
  int32_t forget_to_cell_multiplier;  // forget(2^-15) * cell(s_cell) / s_cell
  int32_t forget_to_cell_shift;
  int32_t input_to_cell_multiplier;   // input gate(2^-15) * cell gate(2^-15) / s_cell
  int32_t input_to_cell_shift;
  int32_t cell_clip;                  // in cell-state units, [0, 32767]; 0 = no clipping
  int32_t cell_scale_power;           // log2(s_cell); the cell tanh uses left shift cell_scale_power + 12
  int32_t output_multiplier;          // output gate(2^-15) * tanh(2^-15) / s_out
  int32_t output_shift;
  int32_t output_offset;              // +zp_out, [-128, 127]; also the zero point of the hidden state
  cmsis_nn_lstm_gate input_gate;
  cmsis_nn_lstm_gate forget_gate;
  cmsis_nn_lstm_gate cell_gate;
  cmsis_nn_lstm_gate output_gate;
};

// int16 sigmoid / tanh as TFLM's integer LSTM computes them (TFLite reference_integer_ops Logistic/Tanh
// on int16, the 256-entry sigmoid(i/24) table with linear interpolation). The input is scaled by
// 3 * 2^left_shift (left_shift >= 0) or by 3 / 2^-left_shift with rounding (left_shift < 0), so an input
// in Q3.12 needs left_shift 0 and an input of scale 2^p needs p + 12. Output Q0.15. In place allowed.
// left_shift in [-31, 30].
arm_cmsis_nn_status arm_nn_activation_s16(const int16_t* input, int16_t* output, int32_t size, int32_t left_shift,
                                          arm_nn_activation_type type);

// Unidirectional s8 LSTM over a whole sequence; writes the hidden state of every step to output.
// ctx->buf: arm_lstm_unidirectional_s8_get_buffer_size(hidden_size, batch_size) bytes, 2-byte aligned
// (layout in arm_lstm_unidirectional_s8.cpp). The state starts at zero (cell 0, hidden = zp_out) on every
// call. A backward direction is this kernel run on the time-reversed input, its output reversed back.
arm_cmsis_nn_status arm_lstm_unidirectional_s8(const cmsis_nn_context* ctx, const int8_t* input,
                                               const cmsis_nn_lstm_params* params, int8_t* output);

}  // namespace kernels
}  // namespace harcore
