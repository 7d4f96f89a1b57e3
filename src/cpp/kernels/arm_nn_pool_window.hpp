// Pooling window clipping shared by max and average pooling (internal to src/cpp/kernels).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_checks.hpp"

namespace harcore {
namespace kernels {
namespace pool_detail {

struct Range {
  int32_t begin;
  int32_t end;  // exclusive
};

// Valid input rows (or columns) of output position o: [o*stride - pad, + k) clipped to [0, n).
inline Range window(int32_t o, int32_t stride, int32_t pad, int32_t k, int32_t n) {
  const int32_t start = o * stride - pad;
  Range r{start < 0 ? 0 : start, start + k > n ? n : start + k};
  return r;
}

// Pointers, dims, strides, activation, and every window holding at least one input element.
inline bool pool_args_ok(const cmsis_nn_pool_params* p, const cmsis_nn_dims* in, const int8_t* input,
                         const cmsis_nn_dims* f, const cmsis_nn_dims* out, const int8_t* output) {
  if (p == nullptr || input == nullptr || output == nullptr || f == nullptr) return false;
  if (!check_detail::dims_positive(in) || !check_detail::dims_positive(out)) return false;
  if (!check_detail::dims_fit(in) || !check_detail::dims_fit(out)) return false;
  if (f->h < 1 || f->w < 1 || out->n != in->n || out->c != in->c) return false;
  if (!check_detail::tile_at_least(p->stride, 1) || !check_detail::tile_at_least(p->padding, 0)) return false;
  if (!check_detail::activation_ok(p->activation)) return false;
  if (static_cast<int64_t>(out->h - 1) * p->stride.h > INT32_MAX / 2 ||
      static_cast<int64_t>(out->w - 1) * p->stride.w > INT32_MAX / 2 || p->padding.h > INT32_MAX / 4 ||
      p->padding.w > INT32_MAX / 4 || f->h > INT32_MAX / 4 || f->w > INT32_MAX / 4) {
    return false;
  }
  // window starts grow with the output index, so the first and last windows bound the rest
  const Range y0 = window(0, p->stride.h, p->padding.h, f->h, in->h);
  const Range y1 = window(out->h - 1, p->stride.h, p->padding.h, f->h, in->h);
  const Range x0 = window(0, p->stride.w, p->padding.w, f->w, in->w);
  const Range x1 = window(out->w - 1, p->stride.w, p->padding.w, f->w, in->w);
  return y0.begin < y0.end && y1.begin < y1.end && x0.begin < x0.end && x1.begin < x1.end;
}

}  // namespace pool_detail
}  // namespace kernels
}  // namespace harcore
