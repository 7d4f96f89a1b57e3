// int8 batch matrix multiplication (TFLite/TFLM BATCH_MATMUL, CMSIS-NN arm_batch_matmul_s8).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {

// CMSIS-NN's cmsis_nn_bmm_params. As in CMSIS-NN, the kernel itself performs no transposes: adj_x and adj_y
// record the TFLite op's flags for the caller (TFLM's glue transposes into scratch; harcore's lowering
// hands the kernel operands already in this layout, see docs/int8.md).
struct cmsis_nn_bmm_params {
  int32_t adj_x;
  int32_t adj_y;
  cmsis_nn_fc_params fc_params;  // input_offset: -zp_lhs, filter_offset: -zp_rhs, output_offset: +zp_out
};

// output[b][i][j] = clamp(zp_out + rq(sum_k (lhs[b][i][k] + input_offset) * (rhs[b][j][k] + filter_offset)))
// with dims n (outer batch), h (inner batch), w (rows), c (columns = the accumulation depth K):
// lhs (n, h, M, K), rhs *transposed* (n, h, N, K), output (n, h, M, N). A batch dim of 1 on one operand
// broadcasts against the other's. rq is TFLM's MultiplyByQuantizedMultiplier of s_lhs * s_rhs / s_out.
arm_cmsis_nn_status arm_batch_matmul_s8(const cmsis_nn_context* ctx, const cmsis_nn_bmm_params* bmm_params,
                                        const cmsis_nn_per_tensor_quant_params* quant_params,
                                        const cmsis_nn_dims* input_lhs_dims, const int8_t* input_lhs,
                                        const cmsis_nn_dims* input_rhs_dims, const int8_t* input_rhs,
                                        const cmsis_nn_dims* output_dims, int8_t* output);

// Scratch bytes: 0 (the C / DSP build needs none; CMSIS-NN's MVE build would hold rhs row sums).
int32_t arm_batch_matmul_s8_get_buffer_size(const cmsis_nn_dims* input_rhs_dims);
int32_t arm_batch_matmul_s8_get_buffer_size_dsp(const cmsis_nn_dims* input_rhs_dims);

}  // namespace kernels
}  // namespace harcore
