// Standalone int8 activation (TFLM's quantized RELU / RELU_N1_TO_1 / RELU6 op as a kernel):
//   out = clamp(requantize(x + input_offset, mult, shift) + output_offset, act_min, act_max)
// with input_offset = -zp_in, output_offset = +zp_out, (mult, shift) from s_in / s_out and the range from
// TFLite's activation-range rule on the output quantization. With equal input and output quantization
// (mult = 2^30, shift = 1, the identity) it is a plain zero-point-aware clamp. Deliberately not
// CMSIS-NN's legacy arm_relu_q7 / arm_relu6_s8, which clamp the raw integer at 0 (and 6) and so ignore
// zero points. In-place use (input == output) is allowed. No scratch.
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_clamp_s8(const int8_t* input, int8_t* output, int32_t size, int32_t input_offset,
                                 int32_t output_offset, int32_t mult, int32_t shift, int32_t act_min,
                                 int32_t act_max) {
  if (input == nullptr || output == nullptr || size < 0 || act_min < INT8_MIN || act_max > INT8_MAX ||
      act_min > act_max || input_offset < -127 || input_offset > 128) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  for (int32_t i = 0; i < size; ++i) {
    output[i] = arm_nn_requantize_to_s8(input[i] + input_offset, mult, shift, output_offset, act_min, act_max);
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
