// Shared body of the s8 fully-connected kernels (internal to src/cpp/kernels).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {
namespace fc_detail {

// input_dims->n batches of K = filter_dims->n values; C_out = filter_dims->c = output_dims->c.
inline bool fc_args_ok(const cmsis_nn_fc_params* p, const cmsis_nn_dims* in, const int8_t* input,
                       const cmsis_nn_dims* f, const int8_t* filter, const cmsis_nn_dims* out, const int8_t* output) {
  if (p == nullptr || input == nullptr || filter == nullptr || output == nullptr) return false;
  if (!check_detail::dims_positive(in) || !check_detail::dims_positive(out) || f == nullptr) return false;
  if (f->n < 1 || f->c < 1 || out->c != f->c || out->n != in->n) return false;
  if (size_detail::mul(size_detail::mul(in->h, in->w), in->c) != f->n) return false;
  if (size_detail::mul(in->n, f->n) < 0 || size_detail::mul(f->n, f->c) < 0 || size_detail::mul(out->n, out->c) < 0) {
    return false;
  }
  if (p->input_offset < -127 || p->input_offset > 128 || p->filter_offset < -127 || p->filter_offset > 128) {
    return false;
  }
  return check_detail::activation_ok(p->activation);
}

// acc = bias[o] + sum_k (w[o][k] + filter_offset) * (x[k] + input_offset), for one batch row.
inline int32_t fc_acc(const cmsis_nn_fc_params* p, const int8_t* x, const int8_t* w_row, int32_t k_depth,
                      const int32_t* bias, int32_t o) {
  uint32_t acc = static_cast<uint32_t>(bias != nullptr ? bias[o] : 0);  // modulo 2^32, as the int32 result
  for (int32_t k = 0; k < k_depth; ++k) {
    acc += static_cast<uint32_t>(static_cast<int32_t>(w_row[k] + p->filter_offset) * (x[k] + p->input_offset));
  }
  return static_cast<int32_t>(acc);
}

// Every batch row times every weight row, requantized to int8. `mult_step` is 0 for one per-tensor
// (multiplier, shift) and 1 for per-channel arrays: the two CMSIS-NN kernels differ only in that.
inline void fc_run(const cmsis_nn_fc_params* p, const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f,
                   const int8_t* filter, const int32_t* bias, const cmsis_nn_dims* out, int8_t* output,
                   const int32_t* multiplier, const int32_t* shift, int32_t mult_step) {
#if defined(HARCORE_HOST_SIMD)
  if (host::fc_s8(p, in, input, f, filter, bias, out, output, multiplier, shift, mult_step)) return;
#endif
  const int32_t k_depth = f->n;
  const int32_t c_out = out->c;
#if defined(ARM_MATH_DSP)
  // s8 weights are symmetric (filter_offset 0, what TFLite produces); a non-zero filter offset takes the
  // plain loop below. Four rows per pass share each widened input word (arm_nn_dsp.hpp).
  if (p->filter_offset == 0) {
    const int32_t in_off = p->input_offset, out_off = p->output_offset;
    const int32_t act_min = p->activation.min, act_max = p->activation.max;
    for (int32_t b = 0; b < in->n; ++b) {
      const int8_t* x = input + b * k_depth;
      int8_t* y = output + b * c_out;
      for (int32_t o = 0; o < c_out; o += 4) {
        const int32_t rows = c_out - o < 4 ? c_out - o : 4;
        if (rows == 1) {  // what dot_rows_s8 does for one row, without the accumulator block around it
          const int32_t b0 = bias != nullptr ? bias[o] : 0;
          const int32_t a0 = dsp::dot1_s8<true>(x, in_off, filter + o * k_depth, k_depth, b0);
          y[o] = dsp::requantize_act(a0, multiplier[o * mult_step], shift[o * mult_step], out_off, act_min, act_max);
          continue;
        }
        int32_t acc[4];
        dsp::init_acc4(acc, bias != nullptr ? bias + o : nullptr, rows);
        dsp::dot_rows_s8<true>(x, in_off, filter + o * k_depth, k_depth, rows, acc);
        for (int32_t r = 0; r < rows; ++r) {
          y[o + r] = dsp::requantize_act(acc[r], multiplier[(o + r) * mult_step], shift[(o + r) * mult_step], out_off,
                                         act_min, act_max);
        }
      }
    }
    return;
  }
#endif
  for (int32_t b = 0; b < in->n; ++b) {
    const int8_t* x = input + static_cast<int64_t>(b) * k_depth;
    for (int32_t o = 0; o < c_out; ++o) {
      const int32_t acc = fc_acc(p, x, filter + static_cast<int64_t>(o) * k_depth, k_depth, bias, o);
      output[static_cast<int64_t>(b) * c_out + o] =
          arm_nn_requantize_to_s8(acc, multiplier[o * mult_step], shift[o * mult_step], p->output_offset,
                                  p->activation.min, p->activation.max);
    }
  }
}

}  // namespace fc_detail
}  // namespace kernels
}  // namespace harcore
