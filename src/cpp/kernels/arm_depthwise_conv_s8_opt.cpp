// s8 depthwise convolution, channel multiplier 1, dilation 1 (docs/cmsis-nn.md §4.2, §5, §6).
// DSP layout: per output pixel an int16 column of KH*KW*C offset-added inputs (padding as 0) is gathered
// into ctx->buf ([(ky*KW + kx)*C + c], 2*C*KH*KW bytes), then each channel is a dot product with its
// KH*KW weights. Without a buffer (allowed only where this build's getter returns 0, i.e. pure C) it
// accumulates directly, as CMSIS-NN's pure-C build does through the generic kernel.
#include "kernels/arm_nn_checks.hpp"
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_dw_pixel.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context* ctx,
                                              const cmsis_nn_dw_conv_params* dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params* quant_params,
                                              const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                              const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                              const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                              const cmsis_nn_dims* output_dims, int8_t* output_data) {
  (void)bias_dims;
  if (!check_detail::dw_args_ok(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (input_dims->c != output_dims->c || dw_conv_params->dilation.w != 1 || dw_conv_params->dilation.h != 1) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const bool have_buf = ctx != nullptr && ctx->buf != nullptr;
  if (!have_buf) {
    if (arm_depthwise_conv_s8_opt_get_buffer_size(input_dims, filter_dims) != 0) return ARM_CMSIS_NN_ARG_ERROR;
    return arm_depthwise_conv_s8(ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                                 bias_dims, bias_data, output_dims, output_data);
  }
  const int32_t need = arm_depthwise_conv_s8_opt_get_buffer_size_dsp(input_dims, filter_dims);
  if (need < 0 || ctx->size < need || !check_detail::buffer_aligned(ctx->buf, 2)) return ARM_CMSIS_NN_ARG_ERROR;
#if defined(HARCORE_HOST_SIMD)
  if (host::dw_s8(dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                  output_dims, output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif

#if defined(ARM_MATH_DSP)
  // DSP path: four channels per word straight from the input (no column buffer: each output pixel would
  // widen its whole window, so gathering costs more than it saves). Per tap, SXTAB16 widens four inputs
  // with the offset added into even/odd halfword pairs, SXTB16 the four weights, and SMLABB/SMLATT do one
  // channel each (depthwise channels never sum together). Same int32 sums modulo 2^32 as the plain loop.
  // The scratch is still required and checked above (the API's contract), just not needed here.
  {
    const int32_t c = input_dims->c, in_h = input_dims->h, in_w = input_dims->w;
    const int32_t fh = filter_dims->h, fw = filter_dims->w;
    const int32_t sh = dw_conv_params->stride.h, sw = dw_conv_params->stride.w;
    const int32_t ph = dw_conv_params->padding.h, pw = dw_conv_params->padding.w;
    const int32_t in_off = dw_conv_params->input_offset, off2 = dsp::pack_s16x2(in_off);
    const int32_t out_off = dw_conv_params->output_offset;
    const int32_t act_min = dw_conv_params->activation.min, act_max = dw_conv_params->activation.max;
    const int32_t* mult = quant_params->multiplier;
    const int32_t* shift = quant_params->shift;
    int8_t* out = output_data;
    for (int32_t b = 0; b < input_dims->n; ++b) {
      const int8_t* in_b = input_data + b * in_h * in_w * c;
      for (int32_t oy = 0; oy < output_dims->h; ++oy) {
        const int32_t iy0 = oy * sh - ph;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = in_h - iy0 < fh ? in_h - iy0 : fh;
        for (int32_t ox = 0; ox < output_dims->w; ++ox, out += c) {
          const int32_t ix0 = ox * sw - pw;
          const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
          const int32_t kx1 = in_w - ix0 < fw ? in_w - ix0 : fw;
          int32_t ch = 0;
          for (; ch + 4 <= c; ch += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (bias_data != nullptr) {
              a0 = bias_data[ch];
              a1 = bias_data[ch + 1];
              a2 = bias_data[ch + 2];
              a3 = bias_data[ch + 3];
            }
            for (int32_t ky = ky0; ky < ky1; ++ky) {
              const int8_t* xr = in_b + ((iy0 + ky) * in_w + ix0 + kx0) * c + ch;
              const int8_t* wr = filter_data + (ky * fw + kx0) * c + ch;
              for (int32_t kx = kx0; kx < kx1; ++kx, xr += c, wr += c) {
                const int32_t xv = dsp::read_s8x4(xr);
                const int32_t wv = dsp::read_s8x4(wr);
                const int32_t xe = dsp::sxtab16(off2, xv), xo = dsp::sxtab16_ror8(off2, xv);
                const int32_t we = dsp::sxtb16(wv), wo = dsp::sxtb16_ror8(wv);
                a0 = dsp::smlabb(we, xe, a0);
                a1 = dsp::smlabb(wo, xo, a1);
                a2 = dsp::smlatt(we, xe, a2);
                a3 = dsp::smlatt(wo, xo, a3);
              }
            }
            out[ch] = dsp::requantize_act(a0, mult[ch], shift[ch], out_off, act_min, act_max);
            out[ch + 1] = dsp::requantize_act(a1, mult[ch + 1], shift[ch + 1], out_off, act_min, act_max);
            out[ch + 2] = dsp::requantize_act(a2, mult[ch + 2], shift[ch + 2], out_off, act_min, act_max);
            out[ch + 3] = dsp::requantize_act(a3, mult[ch + 3], shift[ch + 3], out_off, act_min, act_max);
          }
          for (; ch < c; ++ch) {
            int32_t a = bias_data != nullptr ? bias_data[ch] : 0;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
              const int8_t* xr = in_b + ((iy0 + ky) * in_w + ix0 + kx0) * c + ch;
              const int8_t* wr = filter_data + (ky * fw + kx0) * c + ch;
              for (int32_t kx = kx0; kx < kx1; ++kx, xr += c, wr += c) a = dsp::add_wrap(a, (*xr + in_off) * *wr);
            }
            out[ch] = dsp::requantize_act(a, mult[ch], shift[ch], out_off, act_min, act_max);
          }
        }
      }
    }
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  int16_t* col = static_cast<int16_t*>(ctx->buf);
  const int32_t c = input_dims->c;
  const int32_t taps = filter_dims->h * filter_dims->w;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        int32_t k = 0;
        for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
          const int32_t iy = oy * dw_conv_params->stride.h - dw_conv_params->padding.h + ky;
          for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t ix = ox * dw_conv_params->stride.w - dw_conv_params->padding.w + kx;
            if (iy < 0 || iy >= input_dims->h || ix < 0 || ix >= input_dims->w) {
              for (int32_t ch = 0; ch < c; ++ch) col[k++] = 0;
            } else {
              const int8_t* src = input_data + ((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c;
              for (int32_t ch = 0; ch < c; ++ch) col[k++] = static_cast<int16_t>(src[ch] + dw_conv_params->input_offset);
            }
          }
        }
        int8_t* out = output_data + ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * c;
        for (int32_t ch = 0; ch < c; ++ch) {
          int64_t acc = bias_data != nullptr ? bias_data[ch] : 0;
          for (int32_t t = 0; t < taps; ++t) {
            acc += static_cast<int32_t>(filter_data[static_cast<int64_t>(t) * c + ch]) * col[static_cast<int64_t>(t) * c + ch];
          }
          out[ch] = dw_detail::dw_out(dw_conv_params, quant_params, arm_nn_wrap_s32(acc), ch);
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
