// s8 convolution: the wrapper's dispatch and the scratch-buffer sizes of each path
// (docs/cmsis-nn.md §4.1, §5), and the wrapper kernel.
//
// Paths (identical for pure C and DSP builds):
//   1x1      : no padding, 1x1 filter, dilation 1, not grouped -> arm_convolve_1x1_s8_fast (stride 1) or
//              arm_convolve_1x1_s8; buffer-less with GCC (armclang's DSP 1x1-fast uses 4*C_in).
//   1xN      : input H = 1, filter H = 1, dilation_w 1, (stride_w*C_in) % 4 == 0, not grouped -> on C/DSP
//              builds the generic kernel.
//   generic  : im2col + GEMM over two output pixels at a time; scratch = 2 columns of int16
//              KH*KW*C_in values (C_in rounded up to 4 groups of bytes) = 4 * ceil4(KH*KW*C_in) bytes.
//              C_in is the full input channel count even for grouped convs (over-allocates there).
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

bool arm_nn_is_convolve_1x1(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                            const cmsis_nn_dims* filter_dims) {
  return conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 && filter_dims->h == 1 &&
         conv_params->dilation.w == 1 && conv_params->dilation.h == 1 && input_dims->c == filter_dims->c;
}

bool arm_nn_is_convolve_1x1_fast(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                                 const cmsis_nn_dims* filter_dims) {
  return arm_nn_is_convolve_1x1(conv_params, input_dims, filter_dims) && conv_params->stride.w == 1 &&
         conv_params->stride.h == 1;
}

bool arm_nn_is_convolve_1_x_n(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                              const cmsis_nn_dims* filter_dims) {
  if (input_dims->h != 1 || filter_dims->h != 1 || conv_params->dilation.w != 1) return false;
  if (input_dims->c != filter_dims->c) return false;
  const int32_t sc = size_detail::mul(conv_params->stride.w, input_dims->c);
  return sc >= 0 && sc % 4 == 0;
}

int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims) {
  if (input_dims->c < 1 || filter_dims->h < 1 || filter_dims->w < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t col = size_detail::mul(size_detail::mul(filter_dims->h, filter_dims->w), input_dims->c);
  if (col < 0) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t rounded = size_detail::ceil4(col);
  if (rounded < 0) return ARM_CMSIS_NN_ARG_ERROR;
  // two int16 columns: 2 * 2 * ceil4(KH*KW*C_in) bytes
  return size_detail::mul(4, rounded);
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size_dsp(const cmsis_nn_dims* input_dims) {
#if defined(__ARMCC_VERSION) && (__ARMCC_VERSION >= 6010050)
  return size_detail::mul(4, input_dims->c);
#else
  (void)input_dims;
  return 0;
#endif
}

int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims* input_dims) {
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
  return arm_convolve_1x1_s8_fast_get_buffer_size_dsp(input_dims);
#else
  (void)input_dims;
  return 0;
#endif
}

int32_t arm_convolve_1_x_n_s8_get_buffer_size(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                                              const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims) {
  (void)conv_params;
  (void)output_dims;
  return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
}

namespace {
// Pure C and DSP builds size the paths the same way; only the 1x1-fast getter differs (compiler dependent).
int32_t wrapper_size(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                     const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims, bool dsp) {
  if (arm_nn_is_convolve_1x1(conv_params, input_dims, filter_dims)) {
    if (conv_params->stride.w == 1 && conv_params->stride.h == 1) {
      return dsp ? arm_convolve_1x1_s8_fast_get_buffer_size_dsp(input_dims) : 0;
    }
    return 0;  // arm_convolve_1x1_s8 is buffer-less
  }
  if (arm_nn_is_convolve_1_x_n(conv_params, input_dims, filter_dims)) {
    return arm_convolve_1_x_n_s8_get_buffer_size(conv_params, input_dims, filter_dims, output_dims);
  }
  return arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
}
}  // namespace

int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params* conv_params,
                                                    const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims,
                                                    const cmsis_nn_dims* output_dims) {
  return wrapper_size(conv_params, input_dims, filter_dims, output_dims, true);
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params* conv_params,
                                                const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims,
                                                const cmsis_nn_dims* output_dims) {
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
  return wrapper_size(conv_params, input_dims, filter_dims, output_dims, true);
#else
  return wrapper_size(conv_params, input_dims, filter_dims, output_dims, false);
#endif
}

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                            const cmsis_nn_per_channel_quant_params* quant_params,
                                            const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                            const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                            const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                            const cmsis_nn_dims* output_dims, int8_t* output_data) {
  if (conv_params == nullptr || input_dims == nullptr || filter_dims == nullptr) return ARM_CMSIS_NN_ARG_ERROR;
  if (arm_nn_is_convolve_1x1(conv_params, input_dims, filter_dims)) {
    if (conv_params->stride.w == 1 && conv_params->stride.h == 1) {
      return arm_convolve_1x1_s8_fast(ctx, conv_params, quant_params, input_dims, input_data, filter_dims,
                                      filter_data, bias_dims, bias_data, output_dims, output_data);
    }
    return arm_convolve_1x1_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                               bias_dims, bias_data, output_dims, output_data);
  }
  if (arm_nn_is_convolve_1_x_n(conv_params, input_dims, filter_dims)) {
    return arm_convolve_1_x_n_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                 bias_dims, bias_data, output_dims, output_data);
  }
  return arm_convolve_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_dims,
                         bias_data, output_dims, output_data);
}

}  // namespace kernels
}  // namespace harcore
