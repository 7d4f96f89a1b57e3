// s8 1xN convolution (input H = 1, filter H = 1; docs/cmsis-nn.md §4.1). On pure C and DSP builds CMSIS-NN
// runs the generic kernel for this case (only MVE has a separate body), so this checks the shape and
// calls arm_convolve_s8 with the same scratch (arm_convolve_1_x_n_s8_get_buffer_size bytes).
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_convolve_1_x_n_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                          const cmsis_nn_per_channel_quant_params* quant_params,
                                          const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                          const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                          const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                          const cmsis_nn_dims* output_dims, int8_t* output_data) {
  if (conv_params == nullptr || input_dims == nullptr || filter_dims == nullptr || output_dims == nullptr) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (input_dims->h != 1 || filter_dims->h != 1 || output_dims->h != 1 || conv_params->dilation.w != 1) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  return arm_convolve_s8(ctx, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_dims,
                         bias_data, output_dims, output_data);
}

}  // namespace kernels
}  // namespace harcore
