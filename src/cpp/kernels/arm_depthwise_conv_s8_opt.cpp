// s8 depthwise convolution, channel multiplier 1, dilation 1 (docs/cmsis-nn.md §4.2, §5, §6).
// DSP layout: per output pixel an int16 column of KH*KW*C offset-added inputs (padding as 0) is gathered
// into ctx->buf ([(ky*KW + kx)*C + c], 2*C*KH*KW bytes), then each channel is a dot product with its
// KH*KW weights. Without a buffer (allowed only where this build's getter returns 0, i.e. pure C) it
// accumulates directly, as CMSIS-NN's pure-C build does through the generic kernel.
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dw_pixel.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context* ctx,
                                              const cmsis_nn_dw_conv_params* dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params* quant_params,
                                              const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                              const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                              const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                              const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)bias_dims;
  if (!check_detail::dw_args_ok(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (input_dims->c != output_dims->c || dw_conv_params->dilation.w != 1 || dw_conv_params->dilation.h != 1) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const bool have_buf = ctx != nullptr && ctx->buf != nullptr;
  if (!have_buf) {
    if (arm_depthwise_conv_s8_opt_get_buffer_size(input_dims, filter_dims) != 0) return ARM_CMSIS_NN_ARG_ERROR;
    return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                 bias_dims, bias_data, output_dims, output_data);
  }
  const int32_t need = arm_depthwise_conv_s8_opt_get_buffer_size_dsp(input_dims, filter_dims);
  if (need < 0 || ctx->size < need || !check_detail::buffer_aligned(ctx->buf, 2)) return ARM_CMSIS_NN_ARG_ERROR;
#if defined(HARCORE_HOST_SIMD)
  if (host::dw_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif

  int16_t* col = static_cast<int16_t*>(ctx->buf);
  const int32_t c = input_dims->c;
  const int32_t taps = filter_dims->h * filter_dims->w;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        int32_t k = 0;
        for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
          const int32_t iy = oy * dw_conv_params->stride.h - dw_conv_params->padding.h + ky;
          for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t ix = ox * dw_conv_params->stride.w - dw_conv_params->padding.w + kx;
            if (iy < 0 || iy >= input_dims->h || ix < 0 || ix >= input_dims->w) {
              for (int32_t ch = 0; ch < c; ++ch) col[k++] = 0;
            } else {
              const int8_t* src = input_data + ((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c;
              for (int32_t ch = 0; ch < c; ++ch) col[k++] = static_cast<int16_t>(src[ch] + dw_conv_params->input_offset);
            }
          }
        }
        int8_t* out = output_data + ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * c;
        for (int32_t ch = 0; ch < c; ++ch) {
          int64_t acc = bias_data != nullptr ? bias_data[ch] : 0;
          for (int32_t t = 0; t < taps; ++t) {
            acc += static_cast<int32_t>(filter_data[static_cast<int64_t>(t) * c + ch]) * col[static_cast<int64_t>(t) * c + ch];
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
