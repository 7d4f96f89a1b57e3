// Generic s8 convolution (docs/cmsis-nn.md §3.3, §4.1): im2col over two output pixels at a time into the
// caller's scratch (two int16 columns with the input offset already added, padding as 0), then a
// two-column GEMM against each output channel's OHWI weights. Groups (C_in / filter C), dilation and
// asymmetric implicit right/bottom padding are supported.
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

namespace {

// Gather the KH*KW*C_k patch of output pixel (oy, ox) of batch b, group g into col (int16, offset added).
void fill_column(int16_t* col, const cmsis_nn_conv_params* p, const cmsis_nn_dims* in, const int8_t* input,
                 const cmsis_nn_dims* f, int32_t b, int32_t oy, int32_t ox, int32_t g) {
  const int32_t ck = f->c;
  int32_t k = 0;
  for (int32_t ky = 0; ky < f->h; ++ky) {
    const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
    for (int32_t kx = 0; kx < f->w; ++kx) {
      const int32_t ix = ox * p->stride.w - p->padding.w + kx * p->dilation.w;
      if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) {
        for (int32_t c = 0; c < ck; ++c) col[k++] = 0;  // padding is zp_in: contributes 0
      } else {
        const int8_t* src = input + ((static_cast<int64_t>(b) * in->h + iy) * in->w + ix) * in->c + g * ck;
        for (int32_t c = 0; c < ck; ++c) col[k++] = static_cast<int16_t>(src[c] + p->input_offset);
      }
    }
  }
}


#if defined(ARM_MATH_DSP)
// DSP path (CMSIS-NN's technique: int16 im2col with the offset added, a 2-channel x 2-pixel SMLAD kernel).
// Column layout: within every full group of four values (index k < len4 = col_len rounded down to 4) the
// middle two are stored swapped, [x0, x2, x1, x3], so that the even/odd halfword pairs SXTB16 makes of one
// weight word line up with two column words; the last col_len - len4 values stay in natural order and
// are done one by one. The scratch is the same as the plain path's (two ceil4(KH*KW*C_in) int16 columns).
inline int32_t col_pos(int32_t k, int32_t len4) {
  return k < len4 ? ((k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1)) : k;
}

// Values src[0 .. n) + off (src == nullptr: padding, i.e. 0) to column indices k .. k + n.
void put_run(int16_t* col, int32_t k, const int8_t* src, int32_t n, int32_t off, int32_t len4) {
  int32_t i = 0;
  for (; i < n && ((k + i) & 3) != 0; ++i) {
    col[col_pos(k + i, len4)] = src != nullptr ? static_cast<int16_t>(src[i] + off) : int16_t{0};
  }
  const int32_t off2 = dsp::pack_s16x2(off);
  for (; i + 4 <= n && k + i + 4 <= len4; i += 4) {
    if (src != nullptr) {
      const int32_t v = dsp::read_s8x4(src + i);
      dsp::write_s16x2(col + k + i, dsp::sxtab16(off2, v));
      dsp::write_s16x2(col + k + i + 2, dsp::sxtab16_ror8(off2, v));
    } else {
      dsp::write_s16x2(col + k + i, 0);
      dsp::write_s16x2(col + k + i + 2, 0);
    }
  }
  for (; i < n; ++i) {
    col[col_pos(k + i, len4)] = src != nullptr ? static_cast<int16_t>(src[i] + off) : int16_t{0};
  }
}

void fill_column_dsp(int16_t* col, const cmsis_nn_conv_params* p, const cmsis_nn_dims* in, const int8_t* input,
                     const cmsis_nn_dims* f, int32_t b, int32_t oy, int32_t ox, int32_t g, int32_t len4) {
  const int32_t ck = f->c;
  const int32_t row_len = f->w * ck;
  const int32_t off = p->input_offset;
  int32_t k = 0;
  for (int32_t ky = 0; ky < f->h; ++ky, k += row_len) {
    const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
    if (iy < 0 || iy >= in->h) {
      put_run(col, k, nullptr, row_len, 0, len4);
      continue;
    }
    const int8_t* row = input + (static_cast<int64_t>(b) * in->h + iy) * in->w * in->c + g * ck;
    const int32_t ix0 = ox * p->stride.w - p->padding.w;
    if (p->dilation.w == 1 && ck == in->c) {
      // the valid taps are one contiguous run of the input row
      const int32_t kx0 = ix0 < 0 ? (-ix0 < f->w ? -ix0 : f->w) : 0;
      int32_t kx1 = in->w - ix0 < f->w ? in->w - ix0 : f->w;
      if (kx1 < kx0) kx1 = kx0;
      if (kx0 > 0) put_run(col, k, nullptr, kx0 * ck, 0, len4);
      put_run(col, k + kx0 * ck, kx1 > kx0 ? row + static_cast<int64_t>(ix0 + kx0) * ck : nullptr, (kx1 - kx0) * ck,
              off, len4);
      if (kx1 < f->w) put_run(col, k + kx1 * ck, nullptr, (f->w - kx1) * ck, 0, len4);
      continue;
    }
    for (int32_t kx = 0; kx < f->w; ++kx) {
      const int32_t ix = ix0 + kx * p->dilation.w;
      const bool inside = ix >= 0 && ix < in->w;
      put_run(col, k + kx * ck, inside ? row + static_cast<int64_t>(ix) * in->c : nullptr, ck, off, len4);
    }
  }
}

// acc[r][c] += column c . weight row r over the column layout above, for 2 rows x 2 columns (R, C in {1, 2}).
template <int R, int C>
inline void mac_block(const int16_t* col0, const int16_t* col1, const int8_t* w0, const int8_t* w1, int32_t len4,
                      int32_t col_len, int32_t acc[2][2]) {
  int32_t a00 = acc[0][0], a01 = acc[0][1], a10 = acc[1][0], a11 = acc[1][1];
  int32_t k0 = 0;
  // the assembly block for longer columns; one group of four is cheaper inline than a call
  if (R == 2 && C == 2 && len4 > 4) {
    int32_t a[4] = {a00, a01, a10, a11};
    dsp::mac2x2_s16(col0, static_cast<int32_t>((col1 - col0) * 2), w0, static_cast<int32_t>(w1 - w0), len4 >> 2, a);
    a00 = a[0];
    a01 = a[1];
    a10 = a[2];
    a11 = a[3];
    k0 = len4;
  }
  for (int32_t k = k0; k < len4; k += 4) {
    const int32_t c0e = dsp::read_s16x2(col0 + k);
    const int32_t c0o = dsp::read_s16x2(col0 + k + 2);
    int32_t c1e = 0, c1o = 0;
    if (C == 2) {
      c1e = dsp::read_s16x2(col1 + k);
      c1o = dsp::read_s16x2(col1 + k + 2);
    }
    const int32_t v0 = dsp::read_s8x4(w0 + k);
    const int32_t w0e = dsp::sxtb16(v0), w0o = dsp::sxtb16_ror8(v0);
    a00 = dsp::smlad(w0e, c0e, a00);
    a00 = dsp::smlad(w0o, c0o, a00);
    if (C == 2) {
      a01 = dsp::smlad(w0e, c1e, a01);
      a01 = dsp::smlad(w0o, c1o, a01);
    }
    if (R == 2) {
      const int32_t v1 = dsp::read_s8x4(w1 + k);
      const int32_t w1e = dsp::sxtb16(v1), w1o = dsp::sxtb16_ror8(v1);
      a10 = dsp::smlad(w1e, c0e, a10);
      a10 = dsp::smlad(w1o, c0o, a10);
      if (C == 2) {
        a11 = dsp::smlad(w1e, c1e, a11);
        a11 = dsp::smlad(w1o, c1o, a11);
      }
    }
  }
  for (int32_t k = len4; k < col_len; ++k) {
    a00 = dsp::add_wrap(a00, w0[k] * col0[k]);
    if (C == 2) a01 = dsp::add_wrap(a01, w0[k] * col1[k]);
    if (R == 2) {
      a10 = dsp::add_wrap(a10, w1[k] * col0[k]);
      if (C == 2) a11 = dsp::add_wrap(a11, w1[k] * col1[k]);
    }
  }
  acc[0][0] = a00;
  acc[0][1] = a01;
  acc[1][0] = a10;
  acc[1][1] = a11;
}

template <int C>
void conv_pixels_dsp(const int16_t* col0, const int16_t* col1, const int8_t* filter, int32_t col_len, int32_t oc_begin,
                     int32_t oc_end, const int32_t* bias, const cmsis_nn_per_channel_quant_params* q,
                     const cmsis_nn_conv_params* p, int8_t* out0, int8_t* out1) {
  const int32_t len4 = col_len & ~3;
  // parameters in locals: the int8 output stores may alias anything, so GCC would reload them per value
  const int32_t out_off = p->output_offset, act_min = p->activation.min, act_max = p->activation.max;
  const int32_t* mult = q->multiplier;
  const int32_t* shift = q->shift;
  int32_t oc = oc_begin;
  for (; oc + 2 <= oc_end; oc += 2) {
    const int8_t* w0 = filter + oc * col_len;
    const int32_t b0 = bias != nullptr ? bias[oc] : 0;
    const int32_t b1 = bias != nullptr ? bias[oc + 1] : 0;
    int32_t acc[2][2] = {{b0, b0}, {b1, b1}};
    mac_block<2, C>(col0, col1, w0, w0 + col_len, len4, col_len, acc);
    for (int32_t r = 0; r < 2; ++r) {
      out0[oc + r] = dsp::requantize_act(acc[r][0], mult[oc + r], shift[oc + r], out_off, act_min, act_max);
      if (C == 2) out1[oc + r] = dsp::requantize_act(acc[r][1], mult[oc + r], shift[oc + r], out_off, act_min, act_max);
    }
  }
  if (oc < oc_end) {
    const int8_t* w0 = filter + oc * col_len;
    const int32_t b0 = bias != nullptr ? bias[oc] : 0;
    int32_t acc[2][2] = {{b0, b0}, {0, 0}};
    mac_block<1, C>(col0, col1, w0, w0, len4, col_len, acc);
    out0[oc] = dsp::requantize_act(acc[0][0], mult[oc], shift[oc], out_off, act_min, act_max);
    if (C == 2) out1[oc] = dsp::requantize_act(acc[0][1], mult[oc], shift[oc], out_off, act_min, act_max);
  }
}
#endif  // ARM_MATH_DSP

}  // namespace

arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                    const cmsis_nn_per_channel_quant_params* quant_params,
                                    const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                    const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                    const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                    const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)bias_dims;
  if (!check_detail::conv_args_ok(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                  output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const int32_t need = arm_convolve_s8_get_buffer_size(input_dims, filter_dims);
  if (need < 0 || ctx == nullptr || ctx->buf == nullptr || ctx->size < need ||
      !check_detail::buffer_aligned(ctx->buf, 2)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::conv_s8(conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data, output_dims,
                    output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  const int32_t col_len = filter_dims->h * filter_dims->w * filter_dims->c;
  // Column stride: half the buffer (ceil4(KH*KW*C_in) int16 values); col_len never exceeds it.
  const int32_t col_stride = need / 4;
  int16_t* col0 = static_cast<int16_t*>(ctx->buf);
  int16_t* col1 = col0 + col_stride;

  const int32_t groups = input_dims->c / filter_dims->c;
  const int32_t cout_per_group = filter_dims->n / groups;
  const int32_t out_pixels = output_dims->h * output_dims->w;
  const int32_t* mult = quant_params->multiplier;
  const int32_t* shift = quant_params->shift;
  const int32_t out_off = conv_params->output_offset;
  const int32_t act_min = conv_params->activation.min;
  const int32_t act_max = conv_params->activation.max;

#if defined(ARM_MATH_DSP)
  // A grouped conv with fewer than 8 values per column: the column's reordering costs more than the dual
  // MACs save (measured under QEMU), so the plain loops below take it.
  if (col_len >= 8 || groups == 1) {
  const int32_t len4 = col_len & ~3;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    int8_t* out_batch = output_data + static_cast<int64_t>(b) * out_pixels * output_dims->c;
    for (int32_t g = 0; g < groups; ++g) {
      const int32_t oc0 = g * cout_per_group, oc1 = (g + 1) * cout_per_group;
      int32_t pix = 0;
      for (; pix + 2 <= out_pixels; pix += 2) {
        fill_column_dsp(col0, conv_params, input_dims, input_data, filter_dims, b, pix / output_dims->w,
                        pix % output_dims->w, g, len4);
        fill_column_dsp(col1, conv_params, input_dims, input_data, filter_dims, b, (pix + 1) / output_dims->w,
                        (pix + 1) % output_dims->w, g, len4);
        int8_t* out0 = out_batch + static_cast<int64_t>(pix) * output_dims->c;
        conv_pixels_dsp<2>(col0, col1, filter_data, col_len, oc0, oc1, bias_data, quant_params, conv_params, out0,
                           out0 + output_dims->c);
      }
      if (pix < out_pixels) {
        fill_column_dsp(col0, conv_params, input_dims, input_data, filter_dims, b, pix / output_dims->w,
                        pix % output_dims->w, g, len4);
        conv_pixels_dsp<1>(col0, col0, filter_data, col_len, oc0, oc1, bias_data, quant_params, conv_params,
                           out_batch + static_cast<int64_t>(pix) * output_dims->c, nullptr);
      }
    }
  }
  (void)mult;
  (void)shift;
  (void)out_off;
  (void)act_min;
  (void)act_max;
  return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t b = 0; b < input_dims->n; ++b) {
    int8_t* out_batch = output_data + static_cast<int64_t>(b) * out_pixels * output_dims->c;
    for (int32_t g = 0; g < groups; ++g) {
      for (int32_t pix = 0; pix < out_pixels; pix += 2) {
        const bool two = pix + 1 < out_pixels;
        fill_column(col0, conv_params, input_dims, input_data, filter_dims, b, pix / output_dims->w,
                    pix % output_dims->w, g);
        if (two) {
          fill_column(col1, conv_params, input_dims, input_data, filter_dims, b, (pix + 1) / output_dims->w,
                      (pix + 1) % output_dims->w, g);
        }
        for (int32_t oc = g * cout_per_group; oc < (g + 1) * cout_per_group; ++oc) {
          const int8_t* w = filter_data + static_cast<int64_t>(oc) * col_len;
          // sums modulo 2^32 (what the int32 result keeps); each product fits int32
          const uint32_t bias = static_cast<uint32_t>(bias_data != nullptr ? bias_data[oc] : 0);
          uint32_t acc0 = bias;
          uint32_t acc1 = bias;
          for (int32_t k = 0; k < col_len; ++k) {
            acc0 += static_cast<uint32_t>(static_cast<int32_t>(w[k]) * col0[k]);
            if (two) acc1 += static_cast<uint32_t>(static_cast<int32_t>(w[k]) * col1[k]);
          }
          out_batch[static_cast<int64_t>(pix) * output_dims->c + oc] = arm_nn_requantize_to_s8(
              static_cast<int32_t>(acc0), mult[oc], shift[oc], out_off, act_min, act_max);
          if (two) {
            out_batch[static_cast<int64_t>(pix + 1) * output_dims->c + oc] = arm_nn_requantize_to_s8(
                static_cast<int32_t>(acc1), mult[oc], shift[oc], out_off, act_min, act_max);
          }
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
