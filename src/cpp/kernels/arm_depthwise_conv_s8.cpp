// Generic s8 depthwise convolution (docs/cmsis-nn.md §4.2): any channel multiplier (output channel
// ic*ch_mult + m reads input channel ic), batches, dilation, zero-point padding. Buffer-less.
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dw_pixel.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context* ctx, const cmsis_nn_dw_conv_params* dw_conv_params,
                                          const cmsis_nn_per_channel_quant_params* quant_params,
                                          const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                          const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                          const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                          const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)ctx;
  (void)bias_dims;
  if (!check_detail::dw_args_ok(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::dw_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  const int32_t ch_mult = dw_conv_params->ch_mult;
  int8_t* out = output_data;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        for (int32_t ic = 0; ic < input_dims->c; ++ic) {
          for (int32_t m = 0; m < ch_mult; ++m) {
            const int32_t oc = ic * ch_mult + m;
            const int32_t acc = dw_detail::dw_acc(dw_conv_params, input_dims, input_data, filter_dims, filter_data,
                                                  bias_data, b, oy, ox, ic, oc);
            *out++ = dw_detail::dw_out(dw_conv_params, quant_params, acc, oc);
          }
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
