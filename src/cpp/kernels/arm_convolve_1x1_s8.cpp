// s8 1x1 convolution with any stride, no padding (docs/cmsis-nn.md §4.1): output pixel (y, x) reads input
// pixel (y*stride_h, x*stride_w). Buffer-less (ctx may be NULL).
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_conv_pixel.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_convolve_1x1_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
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
  if (!arm_nn_is_convolve_1x1(conv_params, input_dims, filter_dims)) return ARM_CMSIS_NN_ARG_ERROR;
  // every output pixel must read an input pixel
  if (static_cast<int64_t>(output_dims->h - 1) * conv_params->stride.h >= input_dims->h ||
      static_cast<int64_t>(output_dims->w - 1) * conv_params->stride.w >= input_dims->w) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::conv_s8(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                    output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int64_t in_idx =
            ((static_cast<int64_t>(b) * input_dims->h + oy * conv_params->stride.h) * input_dims->w +
             ox * conv_params->stride.w) * input_dims->c;
        const int64_t out_idx = ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * output_dims->c;
        conv_detail::conv_1x1_pixel(conv_params, quant_params, input_data + in_idx, input_dims->c, filter_data,
                                    output_dims->c, bias_data, output_data + out_idx);
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
