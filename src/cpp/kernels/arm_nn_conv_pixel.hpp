// One output pixel of a 1x1 convolution (internal to src/cpp/kernels): every output channel of the
// pixel is the dot product of its C_in weights with the offset-added input pixel.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_dsp.hpp"
#include "kernels/arm_nn_types.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {
namespace conv_detail {

inline void conv_1x1_pixel(const cmsis_nn_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                           const int8_t* in_pixel, int32_t c_in, const int8_t* filter, int32_t c_out,
                           const int32_t* bias, int8_t* out_pixel) {
#if defined(ARM_MATH_DSP)
  // four output channels per pass share each widened input word (arm_nn_dsp.hpp: same sums modulo 2^32)
  dsp::rows_requant_s8<false>(in_pixel, p->input_offset, filter, c_in, c_out, bias, q->multiplier, q->shift, 1,
                              p->output_offset, p->activation.min, p->activation.max, out_pixel);
  return;
#endif
  for (int32_t oc = 0; oc < c_out; ++oc) {
    const int8_t* w = filter + static_cast<int64_t>(oc) * c_in;
    uint32_t acc = static_cast<uint32_t>(bias != nullptr ? bias[oc] : 0);  // modulo 2^32, as the int32 result
    for (int32_t c = 0; c < c_in; ++c) {
      acc += static_cast<uint32_t>(static_cast<int32_t>(w[c]) * (in_pixel[c] + p->input_offset));
    }
    out_pixel[oc] = arm_nn_requantize_to_s8(static_cast<int32_t>(acc), q->multiplier[oc], q->shift[oc], p->output_offset,
                                            p->activation.min, p->activation.max);
  }
}

}  // namespace conv_detail
}  // namespace kernels
}  // namespace harcore
