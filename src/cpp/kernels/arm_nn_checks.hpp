// Argument checks shared by the kernels (internal to src/cpp/kernels).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {
namespace check_detail {

inline bool dims_positive(const cmsis_nn_dims* d) {
  return d != nullptr && d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

// n*h*w*c fits int32.
inline bool dims_fit(const cmsis_nn_dims* d) {
  return size_detail::mul(size_detail::mul(size_detail::mul(d->n, d->h), d->w), d->c) >= 0;
}

inline bool tile_at_least(const cmsis_nn_tile& t, int32_t lo) { return t.w >= lo && t.h >= lo; }

inline bool activation_ok(const cmsis_nn_activation& a) {
  return a.min >= INT8_MIN && a.max <= INT8_MAX && a.min <= a.max;
}

inline bool buffer_aligned(const void* p, uintptr_t alignment) {
  return (reinterpret_cast<uintptr_t>(p) & (alignment - 1)) == 0;
}

// The input coordinates a window can reach, (out - 1) * stride + (k - 1) * dilation (and the padding
// subtracted from them), stay far inside int32 so that no index arithmetic overflows.
inline bool geometry_fits(int32_t out, int32_t stride, int32_t k, int32_t dilation, int32_t pad) {
  const int64_t reach = static_cast<int64_t>(out - 1) * stride + static_cast<int64_t>(k - 1) * dilation;
  return reach <= INT32_MAX / 2 && pad <= INT32_MAX / 2;
}

template <class Params>
bool conv_geometry_fits(const Params* p, const cmsis_nn_dims* f, const cmsis_nn_dims* out) {
  return geometry_fits(out->h, p->stride.h, f->h, p->dilation.h, p->padding.h) &&
         geometry_fits(out->w, p->stride.w, f->w, p->dilation.w, p->padding.w);
}

// Checks common to every conv path: pointers, dims, groups, strides, activation, per-channel arrays.
inline bool conv_args_ok(const cmsis_nn_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                         const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f, const int8_t* filter,
                         const cmsis_nn_dims* out, const int8_t* output) {
  if (p == nullptr || q == nullptr || q->multiplier == nullptr || q->shift == nullptr) return false;
  if (input == nullptr || filter == nullptr || output == nullptr) return false;
  if (!dims_positive(in) || !dims_positive(f) || !dims_positive(out)) return false;
  if (!dims_fit(in) || !dims_fit(f) || !dims_fit(out)) return false;
  if (in->c % f->c != 0) return false;
  const int32_t groups = in->c / f->c;
  if (f->n % groups != 0 || out->c != f->n || out->n != in->n) return false;
  if (!tile_at_least(p->stride, 1) || !tile_at_least(p->dilation, 1) || !tile_at_least(p->padding, 0)) return false;
  if (!conv_geometry_fits(p, f, out)) return false;
  if (p->input_offset < -127 || p->input_offset > 128) return false;  // -zp_in of an int8 tensor
  return activation_ok(p->activation);
}

inline bool dw_args_ok(const cmsis_nn_dw_conv_params* p, const cmsis_nn_per_channel_quant_params* q,
                       const cmsis_nn_dims* in, const int8_t* input, const cmsis_nn_dims* f, const int8_t* filter,
                       const cmsis_nn_dims* out, const int8_t* output) {
  if (p == nullptr || q == nullptr || q->multiplier == nullptr || q->shift == nullptr) return false;
  if (input == nullptr || filter == nullptr || output == nullptr) return false;
  if (!dims_positive(in) || !dims_positive(f) || !dims_positive(out)) return false;
  if (!dims_fit(in) || !dims_fit(f) || !dims_fit(out)) return false;
  if (p->ch_mult < 1 || size_detail::mul(in->c, p->ch_mult) != out->c || f->c != out->c || f->n != 1) return false;
  if (out->n != in->n) return false;
  if (!tile_at_least(p->stride, 1) || !tile_at_least(p->dilation, 1) || !tile_at_least(p->padding, 0)) return false;
  if (!conv_geometry_fits(p, f, out)) return false;
  if (p->input_offset < -127 || p->input_offset > 128) return false;  // -zp_in of an int8 tensor
  return activation_ok(p->activation);
}

}  // namespace check_detail
}  // namespace kernels
}  // namespace harcore
