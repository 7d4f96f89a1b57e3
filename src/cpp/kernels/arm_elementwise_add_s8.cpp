// s8 elementwise add of two same-shape tensors (docs/cmsis-nn.md §4.7, TFLite's int8 ADD):
//   a = requantize((x1 + off1) * 2^left_shift, m1, s1), b = requantize((x2 + off2) * 2^left_shift, m2, s2),
//   y = clamp(requantize(a + b, m_out, s_out) + out_offset, act_min, act_max).
// The scaling by 2^left_shift is a multiplication (CMSIS-NN shifts negative values left, which is UB).
// No scratch.
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_1_mult, int32_t input_1_shift,
                                           int32_t input_2_offset, int32_t input_2_mult, int32_t input_2_shift,
                                           int32_t left_shift, int8_t* output, int32_t out_offset,
                                           int32_t out_mult, int32_t out_shift, int32_t out_activation_min,
                                           int32_t out_activation_max, int32_t block_size) {
  if (input_1_vect == nullptr || input_2_vect == nullptr || output == nullptr || block_size < 0) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (left_shift < 0 || left_shift > 22 || input_1_offset < -127 || input_1_offset > 128 || input_2_offset < -127 ||
      input_2_offset > 128 || out_activation_min < INT8_MIN || out_activation_max > INT8_MAX ||
      out_activation_min > out_activation_max) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const int32_t scale = int32_t{1} << left_shift;
  int32_t i = 0;
#if defined(HARCORE_HOST_SIMD)
  i = host::add_s8(input_1_vect, input_2_vect, input_1_offset, input_1_mult, input_1_shift, input_2_offset,
                   input_2_mult, input_2_shift, left_shift, output, out_offset, out_mult, out_shift,
                   out_activation_min, out_activation_max, block_size);
#endif
#if defined(ARM_MATH_DSP)
  if (dsp::add_fast_ok(input_1_shift, input_2_shift, out_shift, left_shift)) {
    dsp::add_sub_fast_s8<false>(input_1_vect, input_2_vect, input_1_offset, input_1_mult, input_1_shift,
                                input_2_offset, input_2_mult, input_2_shift, left_shift, output, out_offset, out_mult,
                                out_shift, out_activation_min, out_activation_max, block_size);
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (; i < block_size; ++i) {
    const int32_t a = arm_nn_requantize((input_1_vect[i] + input_1_offset) * scale, input_1_mult, input_1_shift);
    const int32_t b = arm_nn_requantize((input_2_vect[i] + input_2_offset) * scale, input_2_mult, input_2_shift);
    output[i] = arm_nn_requantize_to_s8(arm_nn_add_q31(a, b), out_mult, out_shift, out_offset, out_activation_min,
                                        out_activation_max);
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
