// int8 BATCH_MATMUL with TFLM's arithmetic (reference_ops::BatchMatMul<int8_t, int32_t>: int32 sums of
// offset-added operands, MultiplyByQuantizedMultiplier, output offset, clamp), laid out as CMSIS-NN's
// arm_batch_matmul_s8 (rhs transposed, NHWC-style dims). Integer sums are exact, so the loop order is free;
// depth <= 32768 keeps |sum| below 2^31 (255 * 255 per term).
#include "kernels/arm_nn_batch_matmul.hpp"
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

namespace {

bool batch_ok(int32_t a, int32_t b, int32_t out) { return (a == b || a == 1 || b == 1) && out == (a > b ? a : b); }

}  // namespace

arm_cmsis_nn_status arm_batch_matmul_s8(const cmsis_nn_context* ctx, const cmsis_nn_bmm_params* bmm_params,
                                        const cmsis_nn_per_tensor_quant_params* quant_params,
                                        const cmsis_nn_dims* input_lhs_dims, const int8_t* input_lhs,
                                        const cmsis_nn_dims* input_rhs_dims, const int8_t* input_rhs,
                                        const cmsis_nn_dims* output_dims, int8_t* output) {
  (void)ctx;
  if (bmm_params == nullptr || quant_params == nullptr || input_lhs == nullptr || input_rhs == nullptr ||
      output == nullptr || !check_detail::dims_positive(input_lhs_dims) ||
      !check_detail::dims_positive(input_rhs_dims) || !check_detail::dims_positive(output_dims) ||
      !check_detail::dims_fit(input_lhs_dims) || !check_detail::dims_fit(input_rhs_dims) ||
      !check_detail::dims_fit(output_dims)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const cmsis_nn_fc_params& p = bmm_params->fc_params;
  const int32_t rows = input_lhs_dims->w, cols = input_rhs_dims->w, depth = input_lhs_dims->c;
  if (input_rhs_dims->c != depth || output_dims->w != rows || output_dims->c != cols ||
      !batch_ok(input_lhs_dims->n, input_rhs_dims->n, output_dims->n) ||
      !batch_ok(input_lhs_dims->h, input_rhs_dims->h, output_dims->h) || p.input_offset < -127 ||
      p.input_offset > 128 || p.filter_offset < -127 || p.filter_offset > 128 || p.output_offset < -128 ||
      p.output_offset > 127 || depth > 32768 || quant_params->shift < -31 || quant_params->shift > 30 ||
      !check_detail::activation_ok(p.activation)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const int32_t lhs_mat = rows * depth, rhs_mat = cols * depth;
  for (int32_t b0 = 0; b0 < output_dims->n; ++b0) {
    for (int32_t b1 = 0; b1 < output_dims->h; ++b1) {
      // a batch dim of 1 broadcasts: its index stays 0
      const int32_t li = (input_lhs_dims->n == 1 ? 0 : b0) * input_lhs_dims->h + (input_lhs_dims->h == 1 ? 0 : b1);
      const int32_t ri = (input_rhs_dims->n == 1 ? 0 : b0) * input_rhs_dims->h + (input_rhs_dims->h == 1 ? 0 : b1);
      const int8_t* lhs = input_lhs + li * lhs_mat;
      const int8_t* rhs = input_rhs + ri * rhs_mat;
      int8_t* out = output + (b0 * output_dims->h + b1) * rows * cols;
      for (int32_t i = 0; i < rows; ++i) {
        const int8_t* lrow = lhs + i * depth;
        for (int32_t j = 0; j < cols; ++j) {
          const int8_t* rrow = rhs + j * depth;
          int32_t acc = 0;
          for (int32_t k = 0; k < depth; ++k) {
            acc += (static_cast<int32_t>(lrow[k]) + p.input_offset) * (static_cast<int32_t>(rrow[k]) + p.filter_offset);
          }
          const int32_t v = arm_nn_requantize(acc, quant_params->multiplier, quant_params->shift) + p.output_offset;
          out[i * cols + j] = static_cast<int8_t>(arm_nn_clamp(v, p.activation.min, p.activation.max));
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

int32_t arm_batch_matmul_s8_get_buffer_size(const cmsis_nn_dims* input_rhs_dims) {
  (void)input_rhs_dims;
  return 0;
}

int32_t arm_batch_matmul_s8_get_buffer_size_dsp(const cmsis_nn_dims* input_rhs_dims) {
  (void)input_rhs_dims;
  return 0;
}

}  // namespace kernels
}  // namespace harcore
