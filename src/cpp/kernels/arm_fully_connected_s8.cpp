// s8 fully connected with per-tensor requantization (docs/cmsis-nn.md §4.3): row o of the [C_out][K] weights
// gives output o of each batch. No scratch on pure C / DSP builds.
#include "kernels/arm_nn_fc_row.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims* filter_dims) {
  (void)filter_dims;
  return 0;
}

int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims* filter_dims) {
  return arm_fully_connected_s8_get_buffer_size_dsp(filter_dims);
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context* ctx, const cmsis_nn_fc_params* fc_params,
                                           const cmsis_nn_per_tensor_quant_params* quant_params,
                                           const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                           const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                           const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                           const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)ctx;
  (void)bias_dims;
  if (quant_params == nullptr ||
      !fc_detail::fc_args_ok(fc_params, input_dims, input_data, filter_dims, filter_data, output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  fc_detail::fc_run(fc_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims, output_data,
                    &quant_params->multiplier, &quant_params->shift, 0);
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
