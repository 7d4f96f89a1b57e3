// s8 max pooling (docs/cmsis-nn.md §4.4): NHWC, the window clipped to the input (padding never wins), the
// result clamped to the activation range. Input and output share quantization, so no requantization.
// No scratch (ctx may be NULL). Rejects windows that hold no input element.
#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_host_gemm.hpp"
#include "kernels/arm_nn_pool_window.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context* ctx, const cmsis_nn_pool_params* pool_params,
                                    const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                    const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims,
                                    int8_t* output_data) {
  (void)ctx;
  if (!pool_detail::pool_args_ok(pool_params, input_dims, input_data, filter_dims, output_dims, output_data)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
#if defined(HARCORE_HOST_SIMD)
  if (host::max_pool_s8(pool_params, input_dims, input_data, filter_dims, output_dims, output_data)) {
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  const int32_t c = input_dims->c;
#if defined(ARM_MATH_DSP)
  // Four channels per word: bytewise max over the window (SSUB8 + SEL), then the clamp. Exact: max and
  // clamp are per byte and order-free. Leftover channels take the per-value loop.
  {
    const uint32_t lo_byte = static_cast<uint8_t>(static_cast<int8_t>(pool_params->activation.min));
    const uint32_t hi_byte = static_cast<uint8_t>(static_cast<int8_t>(pool_params->activation.max));
    const int32_t lo4 = static_cast<int32_t>(lo_byte * 0x01010101u);
    const int32_t hi4 = static_cast<int32_t>(hi_byte * 0x01010101u);
    const int32_t row = input_dims->w * c;  // dims_fit: every index of the tensor fits int32
    int8_t* out = output_data;
    for (int32_t b = 0; b < input_dims->n; ++b) {
      const int8_t* in_b = input_data + b * input_dims->h * row;
      for (int32_t oy = 0; oy < output_dims->h; ++oy) {
        const pool_detail::Range ry =
            pool_detail::window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, input_dims->h);
        for (int32_t ox = 0; ox < output_dims->w; ++ox, out += c) {
          const pool_detail::Range rx =
              pool_detail::window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, input_dims->w);
          const int8_t* first = in_b + ry.begin * row + rx.begin * c;
          int32_t ch = 0;
          for (; ch + 4 <= c; ch += 4) {
            int32_t m = dsp::read_s8x4(first + ch);
            for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
              const int8_t* src = in_b + iy * row + rx.begin * c + ch;
              for (int32_t ix = rx.begin; ix < rx.end; ++ix, src += c) m = dsp::max_s8x4(m, dsp::read_s8x4(src));
            }
            dsp::write_s8x4(out + ch, dsp::min_s8x4(dsp::max_s8x4(m, lo4), hi4));
          }
          for (; ch < c; ++ch) {
            int32_t m = INT8_MIN;
            for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
              const int8_t* src = in_b + iy * row + rx.begin * c + ch;
              for (int32_t ix = rx.begin; ix < rx.end; ++ix, src += c) m = *src > m ? *src : m;
            }
            out[ch] = arm_nn_sat_s8(arm_nn_clamp(m, pool_params->activation.min, pool_params->activation.max));
          }
        }
      }
    }
    return ARM_CMSIS_NN_SUCCESS;
  }
#endif
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const pool_detail::Range ry =
          pool_detail::window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, input_dims->h);
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const pool_detail::Range rx =
            pool_detail::window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, input_dims->w);
        int8_t* out = output_data + ((static_cast<int64_t>(b) * output_dims->h + oy) * output_dims->w + ox) * c;
        for (int32_t ch = 0; ch < c; ++ch) {
          int32_t m = INT8_MIN;
          for (int32_t iy = ry.begin; iy < ry.end; ++iy) {
            for (int32_t ix = rx.begin; ix < rx.end; ++ix) {
              const int32_t v =
                  input_data[((static_cast<int64_t>(b) * input_dims->h + iy) * input_dims->w + ix) * c + ch];
              m = v > m ? v : m;
            }
          }
          out[ch] = arm_nn_sat_s8(arm_nn_clamp(m, pool_params->activation.min, pool_params->activation.max));
        }
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
