// s8 LSTM (int8 input/output, int8 weights, int16 gates and cell state; TFLM's "8x8->16" scheme,
// cmsis-nn.md §4.9). The kernel itself is added to this file later.
//
// Scratch layout (caller-owned, one block, int16 parts first so they stay 2-byte aligned):
//   offset 0          int16 temp1[H*batch]       gate pre-activation / activation temporary
//   offset 2*H*B      int16 temp2[H*batch]       second gate temporary
//   offset 4*H*B      int16 cell_state[H*batch]  cell state (zeroed at the start of a sequence)
//   offset 6*H*B      int8  hidden_state[H*batch] hidden state carried between steps
//   total             7*H*batch bytes
// A bidirectional layer runs its directions one after the other and reuses the same block.
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_lstm_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size) {
  if (hidden_size < 1 || batch_size < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t hb = size_detail::mul(hidden_size, batch_size);
  if (hb < 0) return ARM_CMSIS_NN_ARG_ERROR;
  // 2*hb (temp1) + 2*hb (temp2) + 2*hb (cell) + hb (hidden)
  return size_detail::mul(7, hb);
}

}  // namespace kernels
}  // namespace harcore
