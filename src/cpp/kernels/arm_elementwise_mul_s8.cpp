// int8 MUL and SUB with TFLite/TFLM's integer arithmetic (reference_integer_ops Mul; Sub = Add's
// left_shift scheme with the second scaled input subtracted). CMSIS-NN's arm_elementwise_mul_s8 has the
// same signature and arithmetic; CMSIS-NN has no SUB.
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_gru.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_2_offset, int8_t* output,
                                           int32_t out_offset, int32_t out_mult, int32_t out_shift,
                                           int32_t out_activation_min, int32_t out_activation_max,
                                           int32_t block_size) {
  if (input_1_vect == nullptr || input_2_vect == nullptr || output == nullptr || block_size < 0 ||
      input_1_offset < -127 || input_1_offset > 128 || input_2_offset < -127 || input_2_offset > 128 ||
      out_offset < -128 || out_offset > 127 || out_shift < -31 || out_shift > 30 ||
      out_activation_min > out_activation_max) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(ARM_MATH_DSP)
  if (out_shift <= 0) {  // the requantization by SMMULR (arm_nn_dsp.hpp: exact for these products)
    dsp::mul_fast_s8(input_1_vect, input_2_vect, input_1_offset, input_2_offset, output, out_offset, out_mult,
                     out_shift, out_activation_min, out_activation_max, block_size);
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t i = 0; i < block_size; ++i) {
    const int32_t a = static_cast<int32_t>(input_1_vect[i]) + input_1_offset;
    const int32_t b = static_cast<int32_t>(input_2_vect[i]) + input_2_offset;
    int32_t v = arm_nn_requantize(a * b, out_mult, out_shift) + out_offset;
    output[i] = static_cast<int8_t>(arm_nn_clamp(v, out_activation_min, out_activation_max));
  }
  return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_sub_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_1_mult, int32_t input_1_shift,
                                           int32_t input_2_offset, int32_t input_2_mult, int32_t input_2_shift,
                                           int32_t left_shift, int8_t* output, int32_t out_offset,
                                           int32_t out_mult, int32_t out_shift, int32_t out_activation_min,
                                           int32_t out_activation_max, int32_t block_size) {
  if (input_1_vect == nullptr || input_2_vect == nullptr || output == nullptr || block_size < 0 ||
      input_1_offset < -127 || input_1_offset > 128 || input_2_offset < -127 || input_2_offset > 128 ||
      out_offset < -128 || out_offset > 127 || left_shift < 0 || left_shift > 22 || input_1_shift < -31 ||
      input_1_shift > 0 || input_2_shift < -31 || input_2_shift > 0 || out_shift < -31 || out_shift > 0 ||
      out_activation_min > out_activation_max) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(ARM_MATH_DSP)
  if (dsp::add_fast_ok(input_1_shift, input_2_shift, out_shift, left_shift)) {
    dsp::add_sub_fast_s8<true>(input_1_vect, input_2_vect, input_1_offset, input_1_mult, input_1_shift,
                               input_2_offset, input_2_mult, input_2_shift, left_shift, output, out_offset, out_mult,
                               out_shift, out_activation_min, out_activation_max, block_size);
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t i = 0; i < block_size; ++i) {
    const int32_t a = (static_cast<int32_t>(input_1_vect[i]) + input_1_offset) * (int32_t{1} << left_shift);
    const int32_t b = (static_cast<int32_t>(input_2_vect[i]) + input_2_offset) * (int32_t{1} << left_shift);
    const int32_t sa = arm_nn_requantize(a, input_1_mult, input_1_shift);
    const int32_t sb = arm_nn_requantize(b, input_2_mult, input_2_shift);
    const int32_t v = arm_nn_requantize(sa - sb, out_mult, out_shift) + out_offset;
    output[i] = static_cast<int8_t>(arm_nn_clamp(v, out_activation_min, out_activation_max));
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
