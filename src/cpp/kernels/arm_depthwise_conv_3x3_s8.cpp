// s8 depthwise convolution specialised for a 3x3 filter, channel multiplier 1, dilation 1 and padding
// of at most 1 (docs/cmsis-nn.md §4.2, §6). Buffer-less.
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dw_pixel.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context* ctx,
                                              const cmsis_nn_dw_conv_params* dw_conv_params,
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
  if (filter_dims->h != 3 || filter_dims->w != 3 || dw_conv_params->padding.w > 1 || dw_conv_params->padding.h > 1 ||
      dw_conv_params->ch_mult != 1 || dw_conv_params->dilation.w != 1 || dw_conv_params->dilation.h != 1) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::dw_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  const int32_t c = input_dims->c;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t y0 = oy * dw_conv_params->stride.h - dw_conv_params->padding.h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t x0 = ox * dw_conv_params->stride.w - dw_conv_params->padding.w;
        int8_t* out = output_data + ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * c;
        for (int32_t ch = 0; ch < c; ++ch) {
          int64_t acc = bias_data != nullptr ? bias_data[ch] : 0;
          for (int32_t ky = 0; ky < 3; ++ky) {
            const int32_t iy = y0 + ky;
            if (iy < 0 || iy >= input_dims->h) continue;
            for (int32_t kx = 0; kx < 3; ++kx) {
              const int32_t ix = x0 + kx;
              if (ix < 0 || ix >= input_dims->w) continue;
              const int32_t x = input_data[((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c + ch];
              acc += static_cast<int32_t>(filter_data[(ky * 3 + kx) * c + ch]) * (x + dw_conv_params->input_offset);
            }
          }
          out[ch] = dw_detail::dw_out(dw_conv_params, quant_params, arm_nn_wrap_s32(acc), ch);
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
