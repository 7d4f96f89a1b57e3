// s8 average pooling: scratch size (cmsis-nn.md §4.5, §5). The kernel itself is added to this file later.
// DSP builds sum each window per channel into an int32 accumulator row of C entries (4*C bytes);
// pure C sums into a local and needs no buffer.
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

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

}  // namespace kernels
}  // namespace harcore
