// s8 average pooling and its scratch size (docs/cmsis-nn.md §4.5, §5).
// DSP builds sum each window per channel into an int32 accumulator row of C entries (4*C bytes);
// pure C sums into a local and needs no buffer. Sums the raw int8 values over the window clipped to the
// input (count = valid elements), divides rounding half away from zero, clamps to the activation range.
// Input and output share quantization (TFLite enforces it). Rejects windows that hold no input element.
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_pool_window.hpp"
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_avgpool_s8_get_buffer_size_dsp(int32_t dim_dst_width, int32_t ch_src) {
  (void)dim_dst_width;
  if (ch_src < 1) return ARM_CMSIS_NN_ARG_ERROR;
  return size_detail::mul(ch_src, static_cast<int32_t>(sizeof(int32_t)));
}

int32_t arm_avgpool_s8_get_buffer_size(int32_t dim_dst_width, int32_t ch_src) {
#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
  return arm_avgpool_s8_get_buffer_size_dsp(dim_dst_width, ch_src);
#else
  (void)dim_dst_width;
  (void)ch_src;
  return 0;
#endif
}

namespace {
int8_t average(int32_t sum, int32_t count, const cmsis_nn_activation& act) {
  const int32_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
  return arm_nn_sat_s8(arm_nn_clamp(avg, act.min, act.max));
}
}  // namespace

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context* ctx, const cmsis_nn_pool_params* pool_params,
                                   const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                   const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims,
                                   int8_t* output_data) {
  if (!pool_detail::pool_args_ok(pool_params, input_dims, input_data, filter_dims, output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  // window sums stay far inside int32: at most 128 * KH * KW, and KH*KW must fit int32 / 256
  if (size_detail::mul(size_detail::mul(filter_dims->h, filter_dims->w), 256) < 0) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t c = input_dims->c;
  const bool have_buf = ctx != nullptr && ctx->buf != nullptr;
  int32_t* row = nullptr;
  if (have_buf) {
    const int32_t need = arm_avgpool_s8_get_buffer_size_dsp(output_dims->w, c);
    if (need < 0 || ctx->size < need || !check_detail::buffer_aligned(ctx->buf, 4)) return ARM_CMSIS_NN_ARG_ERROR;
    row = static_cast<int32_t*>(ctx->buf);
  } else if (arm_avgpool_s8_get_buffer_size(output_dims->w, c) != 0) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const cmsis_nn_activation act = pool_params->activation;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const pool_detail::Range ry =
          pool_detail::window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, input_dims->h);
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const pool_detail::Range rx =
            pool_detail::window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, input_dims->w);
        const int32_t count = (ry.end - ry.begin) * (rx.end - rx.begin);
        int8_t* out = output_data + ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * c;
#if defined(ARM_MATH_DSP)
        if (row != nullptr) {
          // Four channels per word: SXTAB16 adds bytes 0/2 and 1/3 into int16 lane pairs. A lane holds the sum
          // of at most 256 int8 values (|sum| <= 32768, inside int16 whatever the values), then it is added
          // into the int32 row; so the sums are exact and equal the per-value loop's.
          int32_t ch = 0;
          for (; ch + 4 <= c; ch += 4) {
            int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;
            int32_t s02 = 0, s13 = 0, n = 0;
            for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
              const int8_t* px = input_data + ((b * input_dims->h + iy) * input_dims->w + rx.begin) * c + ch;
              for (int32_t ix = rx.begin; ix < rx.end; ++ix, px += c) {
                const int32_t v = dsp::read_s8x4(px);
                s02 = dsp::sxtab16(s02, v);
                s13 = dsp::sxtab16_ror8(s13, v);
                if (++n == 256) {
                  t0 += static_cast<int16_t>(s02 & 0xFFFF);
                  t2 += s02 >> 16;
                  t1 += static_cast<int16_t>(s13 & 0xFFFF);
                  t3 += s13 >> 16;
                  s02 = s13 = n = 0;
                }
              }
            }
            t0 += static_cast<int16_t>(s02 & 0xFFFF);
            t2 += s02 >> 16;
            t1 += static_cast<int16_t>(s13 & 0xFFFF);
            t3 += s13 >> 16;
            out[ch] = average(t0, count, act);
            out[ch + 1] = average(t1, count, act);
            out[ch + 2] = average(t2, count, act);
            out[ch + 3] = average(t3, count, act);
          }
          for (; ch < c; ++ch) {
            int32_t sum = 0;
            for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
              const int8_t* px = input_data + ((b * input_dims->h + iy) * input_dims->w + rx.begin) * c + ch;
              for (int32_t ix = rx.begin; ix < rx.end; ++ix, px += c) sum += *px;
            }
            out[ch] = average(sum, count, act);
          }
          continue;
        }
#endif
        if (row != nullptr) {
          // DSP order: whole input pixels are added into the per-channel accumulator row
          for (int32_t ch = 0; ch < c; ++ch) row[ch] = 0;
          for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
            for (int32_t ix = rx.begin; ix < rx.end; ++ix) {
              const int8_t* px = input_data + ((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c;
              for (int32_t ch = 0; ch < c; ++ch) row[ch] += px[ch];
            }
          }
          for (int32_t ch = 0; ch < c; ++ch) out[ch] = average(row[ch], count, act);
        } else {
          for (int32_t ch = 0; ch < c; ++ch) {
            int32_t sum = 0;
            for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
              for (int32_t ix = rx.begin; ix < rx.end; ++ix) {
                sum += input_data[((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c + ch];
              }
            }
            out[ch] = average(sum, count, act);
          }
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
