// s8 max pooling (docs/cmsis-nn.md §4.4): NHWC, the window clipped to the input (padding never wins), the
// result clamped to the activation range. Input and output share quantization, so no requantization.
// No scratch (ctx may be NULL). Rejects windows that hold no input element.
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
