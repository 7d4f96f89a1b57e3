// int8 BATCH_MATMUL with TFLM's arithmetic (reference_ops::BatchMatMul<int8_t, int32_t>: int32 sums of
// offset-added operands, MultiplyByQuantizedMultiplier, output offset, clamp), laid out as CMSIS-NN's
// arm_batch_matmul_s8 (rhs transposed, NHWC-style dims). Integer sums are exact, so the loop order is free;
// depth <= 32768 keeps |sum| below 2^31 (255 * 255 per term).
#include "kernels/arm_nn_batch_matmul.hpp"
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

namespace {

bool batch_ok(int32_t a, int32_t b, int32_t out) { return (a == b || a == 1 || b == 1) && out == (a > b ? a : b); }

#if defined(ARM_MATH_DSP)
// An R x C block of outputs (R lhs rows, C rhs rows, each `depth` long): SXTAB16 adds the operand's offset while
// it widens two bytes into int16 lanes (|v + offset| <= 255 fits a lane), SMLAD takes two exact 16x16 products;
// the depth % 4 tail is scalar. R, C in {1, 2}: 2 x 2 keeps the 4 sums, the 4 widened lhs halves and 2 rhs
// halves in registers, and each loaded rhs word serves two rows. Sums modulo 2^32, as the plain path's.
template <int R, int C>
__attribute__((always_inline)) inline void bmm_block(const int8_t* lhs, const int8_t* rhs, int32_t depth,
                                                     int32_t lhs_off, int32_t rhs_off, int32_t* acc) {
  const int32_t lo2 = dsp::pack_s16x2(lhs_off), ro2 = dsp::pack_s16x2(rhs_off);
  int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
  const int8_t* l0 = lhs;
  const int8_t* r0 = rhs;
  int32_t n = depth >> 2;
  while (n-- > 0) {
    const int32_t lw0 = dsp::read_s8x4(l0);
    const int32_t l0e = dsp::sxtab16(lo2, lw0), l0o = dsp::sxtab16_ror8(lo2, lw0);
    int32_t l1e = 0, l1o = 0;
    if (R == 2) {
      const int32_t lw1 = dsp::read_s8x4(l0 + depth);
      l1e = dsp::sxtab16(lo2, lw1);
      l1o = dsp::sxtab16_ror8(lo2, lw1);
    }
    const int32_t rw0 = dsp::read_s8x4(r0);
    int32_t re = dsp::sxtab16(ro2, rw0), ro = dsp::sxtab16_ror8(ro2, rw0);
    a00 = dsp::smlad(l0e, re, a00);
    a00 = dsp::smlad(l0o, ro, a00);
    if (R == 2) {
      a10 = dsp::smlad(l1e, re, a10);
      a10 = dsp::smlad(l1o, ro, a10);
    }
    if (C == 2) {
      const int32_t rw1 = dsp::read_s8x4(r0 + depth);
      re = dsp::sxtab16(ro2, rw1);
      ro = dsp::sxtab16_ror8(ro2, rw1);
      a01 = dsp::smlad(l0e, re, a01);
      a01 = dsp::smlad(l0o, ro, a01);
      if (R == 2) {
        a11 = dsp::smlad(l1e, re, a11);
        a11 = dsp::smlad(l1o, ro, a11);
      }
    }
    l0 += 4;
    r0 += 4;
  }
  for (int32_t k = depth & 3; k > 0; --k) {
    const int32_t x0 = *l0 + lhs_off, y0 = *r0 + rhs_off;
    a00 += x0 * y0;
    if (C == 2) a01 += x0 * (r0[depth] + rhs_off);
    if (R == 2) {
      const int32_t x1 = l0[depth] + lhs_off;
      a10 += x1 * y0;
      if (C == 2) a11 += x1 * (r0[depth] + rhs_off);
    }
    ++l0;
    ++r0;
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

// One matrix of the batch: out (rows, cols) from lhs (rows, depth) and the transposed rhs (cols, depth).
void bmm_matrix_dsp(const int8_t* lhs, const int8_t* rhs, int8_t* out, int32_t rows, int32_t cols, int32_t depth,
                    const cmsis_nn_fc_params& p, int32_t mult, int32_t shift) {
  const int32_t lo = p.input_offset, ro = p.filter_offset, oo = p.output_offset;
  const int32_t amin = p.activation.min, amax = p.activation.max;
  int32_t acc[4];
  int32_t i = 0;
  for (; i + 2 <= rows; i += 2) {
    const int8_t* l = lhs + i * depth;
    int8_t* o = out + i * cols;
    int32_t j = 0;
    for (; j + 2 <= cols; j += 2) {
      bmm_block<2, 2>(l, rhs + j * depth, depth, lo, ro, acc);
      o[j] = dsp::requantize_act(acc[0], mult, shift, oo, amin, amax);
      o[j + 1] = dsp::requantize_act(acc[1], mult, shift, oo, amin, amax);
      o[cols + j] = dsp::requantize_act(acc[2], mult, shift, oo, amin, amax);
      o[cols + j + 1] = dsp::requantize_act(acc[3], mult, shift, oo, amin, amax);
    }
    if (j < cols) {
      bmm_block<2, 1>(l, rhs + j * depth, depth, lo, ro, acc);
      o[j] = dsp::requantize_act(acc[0], mult, shift, oo, amin, amax);
      o[cols + j] = dsp::requantize_act(acc[2], mult, shift, oo, amin, amax);
    }
  }
  if (i < rows) {
    const int8_t* l = lhs + i * depth;
    int8_t* o = out + i * cols;
    int32_t j = 0;
    for (; j + 2 <= cols; j += 2) {
      bmm_block<1, 2>(l, rhs + j * depth, depth, lo, ro, acc);
      o[j] = dsp::requantize_act(acc[0], mult, shift, oo, amin, amax);
      o[j + 1] = dsp::requantize_act(acc[1], mult, shift, oo, amin, amax);
    }
    if (j < cols) {
      bmm_block<1, 1>(l, rhs + j * depth, depth, lo, ro, acc);
      o[j] = dsp::requantize_act(acc[0], mult, shift, oo, amin, amax);
    }
  }
}
#endif

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
#if defined(ARM_MATH_DSP)
      bmm_matrix_dsp(lhs, rhs, out, rows, cols, depth, p, quant_params->multiplier, quant_params->shift);
#else
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
#endif
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
