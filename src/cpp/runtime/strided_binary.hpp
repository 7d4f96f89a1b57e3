// Broadcasting elementwise steps (MUL, ADD with broadcast) as the runtime lays them out: two operands of up to
// 4 strided dims (a broadcast dim has stride 0), output contiguous in that order (MulArgs, AddBcastArgs). One
// kernel call per row where both operands' rows are contiguous, else one per element.
//
// kSpread: one operand broadcast along the last dim (stride 0) against a contiguous one, e.g. a per-channel
// scale x[c, 1] * y[c, t]: that operand's value is repeated into a row buffer on the stack and the kernel runs
// once per row (chunks of kSpreadMax) instead of once per element, where the per-call cost dominated. Every
// output byte is the same function of the same two input bytes, so the result is unchanged.
//
// One copy for harcore's runtime and the CMSIS-NN backend (firmware/backends/cmsis-nn), so both make the same
// kernel calls over the same rows. No dependencies: `kernel(x, y, out, n)` returns a status, 0 for success (the
// value of ARM_CMSIS_NN_SUCCESS in harcore's kernels and in CMSIS-NN), and the first other status is returned.
#pragma once

#include <stdint.h>

namespace harcore {
namespace rt {

constexpr int32_t kSpreadMax = 64;

template <bool kSpread = false, typename Args, typename Kernel>
int32_t strided_binary(const Args& a, const int8_t* in0, const int8_t* in1, int8_t* out, Kernel kernel) {
  const int32_t s0 = a.input0_strides[3], s1 = a.input1_strides[3];
  const bool rows = s0 == 1 && s1 == 1;
  const bool spread = kSpread && a.dims[3] > 1 && ((s0 == 0 && s1 == 1) || (s0 == 1 && s1 == 0));
  const int32_t run = rows ? a.dims[3] : 1;
  uint32_t rep_words[kSpread ? kSpreadMax / 4 : 1];
  int8_t* rep = reinterpret_cast<int8_t*>(rep_words);
  int8_t* o = out;
  for (int32_t i0 = 0; i0 < a.dims[0]; ++i0) {
    for (int32_t i1 = 0; i1 < a.dims[1]; ++i1) {
      for (int32_t i2 = 0; i2 < a.dims[2]; ++i2) {
        const int8_t* x = in0 + i0 * a.input0_strides[0] + i1 * a.input0_strides[1] + i2 * a.input0_strides[2];
        const int8_t* y = in1 + i0 * a.input1_strides[0] + i1 * a.input1_strides[1] + i2 * a.input1_strides[2];
        if (kSpread && spread) {
          const int32_t fill = a.dims[3] < kSpreadMax ? a.dims[3] : kSpreadMax;
          const uint32_t v = (static_cast<uint32_t>(s0 == 0 ? *x : *y) & 0xFFu) * 0x01010101u;
          for (int32_t w = 0; w < (fill + 3) / 4; ++w) rep_words[w] = v;
          for (int32_t i3 = 0; i3 < a.dims[3]; i3 += kSpreadMax) {
            const int32_t n = a.dims[3] - i3 < kSpreadMax ? a.dims[3] - i3 : kSpreadMax;
            const int32_t st = s0 == 0 ? kernel(rep, y + i3, o, n) : kernel(x + i3, rep, o, n);
            if (st != 0) return st;
            o += n;
          }
          continue;
        }
        for (int32_t i3 = 0; i3 < a.dims[3]; i3 += run, o += run) {
          const int32_t st = kernel(x + i3 * a.input0_strides[3], y + i3 * a.input1_strides[3], o, run);
          if (st != 0) return st;
        }
      }
    }
  }
  return 0;
}

}  // namespace rt
}  // namespace harcore
