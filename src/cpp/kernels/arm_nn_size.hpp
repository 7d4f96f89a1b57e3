// Guarded int32 size arithmetic shared by the buffer-size getters (internal to the kernels).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {
namespace size_detail {

// a * b, or ARM_CMSIS_NN_ARG_ERROR if either factor is negative or the product leaves int32.
inline int32_t mul(int32_t a, int32_t b) {
  int32_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return ARM_CMSIS_NN_ARG_ERROR;
  return r;
}

// Round a non-negative size up to a multiple of 4 (CMSIS-NN's CH_IN_BLOCK / ceil4).
inline int32_t ceil4(int32_t v) {
  if (v < 0 || v > INT32_MAX - 3) return ARM_CMSIS_NN_ARG_ERROR;
  return (v + 3) & ~int32_t{3};
}

}  // namespace size_detail
}  // namespace kernels
}  // namespace harcore
