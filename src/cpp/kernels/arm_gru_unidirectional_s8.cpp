// s8 GRU, harcore's scheme built from the same parts as the LSTM (int8 input/output and weights, int16
// gates and hidden state). The kernel itself is added to this file later.
//
// Scratch layout (caller-owned, one block, int16 parts first so they stay 2-byte aligned):
//   offset 0          int16 r[H*batch]            reset gate
//   offset 2*H*B      int16 z[H*batch]            update gate
//   offset 4*H*B      int16 n_hidden[H*batch]     W_hn*h + b_hn (scaled by r before the candidate tanh)
//   offset 6*H*B      int16 hidden16[H*batch]     int16 hidden state used by the update
//   offset 8*H*B      int8  hidden_state[H*batch] int8 hidden state fed to the recurrent matmul
//   total             9*H*batch bytes
// A bidirectional layer runs its directions one after the other and reuses the same block.
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_gru_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size) {
  if (hidden_size < 1 || batch_size < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t hb = size_detail::mul(hidden_size, batch_size);
  if (hb < 0) return ARM_CMSIS_NN_ARG_ERROR;
  // 2*hb (r) + 2*hb (z) + 2*hb (n-hidden) + 2*hb (int16 hidden) + hb (int8 hidden)
  return size_detail::mul(9, hb);
}

}  // namespace kernels
}  // namespace harcore
