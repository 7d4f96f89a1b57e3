// s8 1x1 convolution, stride 1, no padding (docs/cmsis-nn.md §4.1): the input is a (N*H*W) x C_in matrix
// multiplied by the C_out x C_in weights. Buffer-less with GCC (ctx may be NULL).
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_conv_pixel.hpp"
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                             const cmsis_nn_per_channel_quant_params* quant_params,
                                             const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                             const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                             const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                             const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)ctx;
  (void)bias_dims;
  if (!check_detail::conv_args_ok(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                  output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (!arm_nn_is_convolve_1x1_fast(conv_params, input_dims, filter_dims) || output_dims->h != input_dims->h ||
      output_dims->w != input_dims->w) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::conv_s8(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                    output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  const int32_t rows = input_dims->n * input_dims->h * input_dims->w;
#if defined(ARM_MATH_DSP)
  // every pixel is one matrix-vector product; the fast requantization is proven once for the call
  {
    const int32_t c_in = input_dims->c, c_out = output_dims->c;
    const bool fast = dsp::rows_fast_ok(bias_data, quant_params->shift, 1, c_out, c_in);
    if (fast) {
      dsp::pixels_requant_s8<true>(input_data, conv_params->input_offset, filter_data, c_in, c_out, rows, bias_data,
                                   quant_params->multiplier, quant_params->shift, conv_params->output_offset,
                                   conv_params->activation.min, conv_params->activation.max, output_data);
    } else {
      dsp::pixels_requant_s8<false>(input_data, conv_params->input_offset, filter_data, c_in, c_out, rows, bias_data,
                                    quant_params->multiplier, quant_params->shift, conv_params->output_offset,
                                    conv_params->activation.min, conv_params->activation.max, output_data);
    }
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t r = 0; r < rows; ++r) {
    conv_detail::conv_1x1_pixel(conv_params, quant_params, input_data + static_cast<int64_t>(r) * input_dims->c,
                                input_dims->c, filter_data, output_dims->c, bias_data,
                                output_data + static_cast<int64_t>(r) * output_dims->c);
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
