// s8 fully connected with one (multiplier, shift) per output channel (cmsis-nn.md §4.3; TF 2.21's
// converter quantizes Dense weights per channel by default). No scratch on pure C / DSP builds.
#include "kernels/arm_nn_fc_row.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_fully_connected_per_channel_s8(const cmsis_nn_context* ctx, const cmsis_nn_fc_params* fc_params,
                                                       const cmsis_nn_per_channel_quant_params* quant_params,
                                                       const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                                       const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                                       const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                                       const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)ctx;
  (void)bias_dims;
  if (quant_params == nullptr || quant_params->multiplier == nullptr || quant_params->shift == nullptr ||
      !fc_detail::fc_args_ok(fc_params, input_dims, input_data, filter_dims, filter_data, output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const int32_t k_depth = filter_dims->n;
  const int32_t c_out = output_dims->c;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const int8_t* x = input_data + static_cast<int64_t>(b) * k_depth;
    for (int32_t o = 0; o < c_out; ++o) {
      const int32_t acc = fc_detail::fc_acc(fc_params, x, filter_data + static_cast<int64_t>(o) * k_depth, k_depth,
                                            bias_data, o);
      output_data[static_cast<int64_t>(b) * c_out + o] =
          arm_nn_requantize_to_s8(acc, quant_params->multiplier[o], quant_params->shift[o], fc_params->output_offset,
                                  fc_params->activation.min, fc_params->activation.max);
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
