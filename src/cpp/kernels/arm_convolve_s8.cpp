// Generic s8 convolution (docs/cmsis-nn.md §3.3, §4.1): im2col over two output pixels at a time into the
// caller's scratch (two int16 columns with the input offset already added, padding as 0), then a
// two-column GEMM against each output channel's OHWI weights. Groups (C_in / filter C), dilation and
// asymmetric implicit right/bottom padding are supported.
#include "kernels/arm_nn_checks.hpp"
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
          const int64_t bias = bias_data != nullptr ? bias_data[oc] : 0;
          int64_t acc0 = bias;
          int64_t acc1 = bias;
          for (int32_t k = 0; k < col_len; ++k) {
            acc0 += static_cast<int32_t>(w[k]) * col0[k];
            if (two) acc1 += static_cast<int32_t>(w[k]) * col1[k];
          }
          out_batch[static_cast<int64_t>(pix) * output_dims->c + oc] = arm_nn_requantize_to_s8(
              arm_nn_wrap_s32(acc0), mult[oc], shift[oc], out_off, act_min, act_max);
          if (two) {
            out_batch[static_cast<int64_t>(pix + 1) * output_dims->c + oc] = arm_nn_requantize_to_s8(
                arm_nn_wrap_s32(acc1), mult[oc], shift[oc], out_off, act_min, act_max);
          }
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
