// Direct depthwise accumulation for one output value (internal to src/cpp/kernels):
// bias[oc] + sum over the valid window of (x[ic] + input_offset) * w[oc]; positions outside the input
// are padding (zp_in) and contribute nothing.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {
namespace dw_detail {

inline int32_t dw_acc(const cmsis_nn_dw_conv_params* p, const cmsis_nn_dims* in, const int8_t* input,
                      const cmsis_nn_dims* f, const int8_t* filter, const int32_t* bias, int32_t b, int32_t oy,
                      int32_t ox, int32_t ic, int32_t oc) {
  uint32_t acc = static_cast<uint32_t>(bias != nullptr ? bias[oc] : 0);  // modulo 2^32, as the int32 result
  for (int32_t ky = 0; ky < f->h; ++ky) {
    const int32_t iy = oy * p->stride.h - p->padding.h + ky * p->dilation.h;
    if (iy < 0 || iy >= in->h) continue;
    for (int32_t kx = 0; kx < f->w; ++kx) {
      const int32_t ix = ox * p->stride.w - p->padding.w + kx * p->dilation.w;
      if (ix < 0 || ix >= in->w) continue;
      const int32_t x = input[((static_cast<int64_t>(b) * in->h + iy) * in->w + ix) * in->c + ic];
      const int32_t w = filter[static_cast<int64_t>(ky * f->w + kx) * f->c + oc];
      acc += static_cast<uint32_t>(w * (x + p->input_offset));
    }
  }
  return static_cast<int32_t>(acc);
}

inline int8_t dw_out(const cmsis_nn_dw_conv_params* p, const cmsis_nn_per_channel_quant_params* q, int32_t acc,
                     int32_t oc) {
  return arm_nn_requantize_to_s8(acc, q->multiplier[oc], q->shift[oc], p->output_offset, p->activation.min,
                                 p->activation.max);
}

}  // namespace dw_detail
}  // namespace kernels
}  // namespace harcore
