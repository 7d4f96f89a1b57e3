// s8 depthwise convolution: the wrapper's dispatch and scratch sizes (docs/cmsis-nn.md §4.2, §5).
// Also the wrapper kernel.
//
// Paths (pure C and DSP builds; one rule for "ch_mult 1": C_out == C_in, i.e. dw_conv_params->ch_mult == 1):
//   ch_mult 1, batch 1, dilation 1, 3x3 filter, pad_w <= 1 and pad_h <= 1 -> arm_depthwise_conv_3x3_s8, no buffer;
//   ch_mult 1, batch 1, dilation 1, other filters -> arm_depthwise_conv_s8_opt: DSP builds keep an int16 column
//       of C*KH*KW values (2*C*KH*KW bytes); pure C calls the generic kernel, no buffer;
//   anything else (ch_mult > 1, batch > 1, dilation) -> arm_depthwise_conv_s8, no buffer.
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

namespace {
bool is_opt_family(const cmsis_nn_dw_conv_params* p, const cmsis_nn_dims* input_dims) {
  return p->ch_mult == 1 && input_dims->n == 1 && p->dilation.w == 1 && p->dilation.h == 1;
}
}  // namespace

bool arm_nn_is_depthwise_conv_3x3(const cmsis_nn_dw_conv_params* dw_conv_params, const cmsis_nn_dims* input_dims,
                                  const cmsis_nn_dims* filter_dims) {
  return is_opt_family(dw_conv_params, input_dims) && filter_dims->w == 3 && filter_dims->h == 3 &&
         dw_conv_params->padding.w <= 1 && dw_conv_params->padding.h <= 1;
}

bool arm_nn_is_depthwise_conv_opt(const cmsis_nn_dw_conv_params* dw_conv_params, const cmsis_nn_dims* input_dims,
                                  const cmsis_nn_dims* filter_dims) {
  return is_opt_family(dw_conv_params, input_dims) &&
         !arm_nn_is_depthwise_conv_3x3(dw_conv_params, input_dims, filter_dims);
}

int32_t arm_depthwise_conv_s8_opt_get_buffer_size_dsp(const cmsis_nn_dims* input_dims,
                                                      const cmsis_nn_dims* filter_dims) {
  if (input_dims->c < 1 || filter_dims->h < 1 || filter_dims->w < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t col = size_detail::mul(size_detail::mul(input_dims->c, filter_dims->h), filter_dims->w);
  if (col < 0) return ARM_CMSIS_NN_ARG_ERROR;
  return size_detail::mul(2, col);  // int16 values
}

int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims) {
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
  return arm_depthwise_conv_s8_opt_get_buffer_size_dsp(input_dims, filter_dims);
#else
  (void)input_dims;
  (void)filter_dims;
  return 0;
#endif
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params* dw_conv_params,
                                                          const cmsis_nn_dims* input_dims,
                                                          const cmsis_nn_dims* filter_dims,
                                                          const cmsis_nn_dims* output_dims) {
  (void)output_dims;
  if (arm_nn_is_depthwise_conv_opt(dw_conv_params, input_dims, filter_dims)) {
    return arm_depthwise_conv_s8_opt_get_buffer_size_dsp(input_dims, filter_dims);
  }
  return 0;  // 3x3 special case and generic kernel are buffer-less
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params* dw_conv_params,
                                                      const cmsis_nn_dims* input_dims,
                                                      const cmsis_nn_dims* filter_dims,
                                                      const cmsis_nn_dims* output_dims) {
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
  return arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(dw_conv_params, input_dims, filter_dims, output_dims);
#else
  (void)dw_conv_params;
  (void)input_dims;
  (void)filter_dims;
  (void)output_dims;
  return 0;
#endif
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context* ctx,
                                                  const cmsis_nn_dw_conv_params* dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params* quant_params,
                                                  const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                                  const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                                  const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                                  const cmsis_nn_dims* output_dims, int8_t* output_data) {
  if (dw_conv_params == nullptr || input_dims == nullptr || filter_dims == nullptr) return ARM_CMSIS_NN_ARG_ERROR;
  if (arm_nn_is_depthwise_conv_3x3(dw_conv_params, input_dims, filter_dims)) {
    return arm_depthwise_conv_3x3_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
  }
  if (arm_nn_is_depthwise_conv_opt(dw_conv_params, input_dims, filter_dims)) {
    return arm_depthwise_conv_s8_opt(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                     filter_data, bias_dims, bias_data, output_dims, output_data);
  }
  return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                               bias_dims, bias_data, output_dims, output_data);
}

}  // namespace kernels
}  // namespace harcore
