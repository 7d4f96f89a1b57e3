// s8 softmax (docs/cmsis-nn.md §4.6; TFLite/TFLM's integer softmax): per row, differences to the row maximum
// scaled to Q5.26 by (mult, shift), exp in Q0.31, a sum with 12 integer bits, a Newton-Raphson
// reciprocal, and int8 output with scale 1/256 and zero point -128. Elements whose difference is below
// diff_min output -128. No scratch. The sum wraps modulo 2^32 beyond ~4096 elements per row, as the
// reference does.
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

namespace {
constexpr int32_t kScaledDiffIntegerBits = 5;
constexpr int32_t kAccumulationIntegerBits = 12;

int32_t scaled_exp(int32_t diff, int32_t mult, int32_t shift) {
  const int32_t scaled = arm_nn_doubling_high_mult(arm_nn_mul_pot_wrap(diff, shift), mult);
  return arm_nn_exp_on_negative_values(scaled, kScaledDiffIntegerBits);
}
}  // namespace

arm_cmsis_nn_status arm_softmax_s8(const int8_t* input, int32_t num_rows, int32_t row_size, int32_t mult,
                                   int32_t shift, int32_t diff_min, int8_t* output) {
  if (input == nullptr || output == nullptr || num_rows < 0 || row_size < 1 || shift < 0 || shift > 31) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  for (int32_t r = 0; r < num_rows; ++r) {
    const int8_t* in = input + static_cast<int64_t>(r) * row_size;
    int8_t* out = output + static_cast<int64_t>(r) * row_size;
    int32_t max = INT8_MIN;
    for (int32_t i = 0; i < row_size; ++i) max = in[i] > max ? in[i] : max;

    uint32_t sum = 0;  // Q12.19, wrapping like the reference's int32 sum
    for (int32_t i = 0; i < row_size; ++i) {
      const int32_t diff = in[i] - max;
      if (diff >= diff_min) {
        sum += static_cast<uint32_t>(
            arm_nn_divide_by_power_of_two(scaled_exp(diff, mult, shift), kAccumulationIntegerBits));
      }
    }
    const int32_t headroom = arm_nn_clz(sum);
    const uint32_t shifted = headroom < 32 ? (sum << headroom) : 0u;
    const int32_t shifted_scale =
        arm_nn_one_over_one_plus_x_for_x_in_0_1(static_cast<int32_t>(shifted - 0x80000000u));
    const int32_t bits_over_unit = kAccumulationIntegerBits - headroom + 31 - 8;

    for (int32_t i = 0; i < row_size; ++i) {
      const int32_t diff = in[i] - max;
      if (diff >= diff_min) {
        const int32_t e = scaled_exp(diff, mult, shift);
        const int32_t unsat = arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(shifted_scale, e), bits_over_unit);
        out[i] = arm_nn_sat_s8(unsat + INT8_MIN);
      } else {
        out[i] = INT8_MIN;
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
