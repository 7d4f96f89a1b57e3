// s8 LSTM (int8 input/output, int8 weights, int16 gates and cell state; TFLM's integer
// UNIDIRECTIONAL_SEQUENCE_LSTM, the "8x8->16" scheme, cmsis-nn.md §4.9), and its int16 sigmoid/tanh.
// Bit-exact with the TFLM reference interpreter (tests/test_kernels_lstm_oracle.py).
//
// Scratch layout (caller-owned, one block, int16 parts first so they stay 2-byte aligned):
//   offset 0          int16 temp1[H*batch]       forget gate, then input gate, then output gate
//   offset 2*H*B      int16 temp2[H*batch]       cell gate, then tanh(cell state)
//   offset 4*H*B      int16 cell_state[H*batch]  cell state (zeroed at the start of a sequence)
//   offset 6*H*B      int8  hidden_state[H*batch] hidden state carried between steps (zp_out at the start)
//   total             7*H*batch bytes
// A bidirectional layer runs its directions one after the other and reuses the same block; the backward
// direction is this kernel on the time-reversed input, with its output sequence reversed back.
//
// One time step, per batch (every gate reads the previous hidden state; same order as TFLM):
//   gate      = sat16(sat16(rq(x.W_in + eb_in, m_in, s_in)) + sat16(rq(h.W_h + eb_h, m_h, s_h)))  (Q3.12)
//   f = sigmoid(gate_f)                                           -> temp1  (Q0.15)
//   cell = sat16(rq(f * cell, forget_to_cell))                    (in place)
//   i = sigmoid(gate_i) -> temp1,  g = tanh(gate_g) -> temp2
//   cell = sat16(cell + sat16(rq(i * g, input_to_cell))), clipped to +-cell_clip when cell_clip > 0
//   o = sigmoid(gate_o) -> temp1,  temp2 = tanh(cell) with left shift cell_scale_power + 12
//   hidden = clamp(rq(o * temp2, output) + zp_out, -128, 127)    -> hidden_state and output[t]
// rq is the double-rounding requantization (arm_nn_requantize). Accumulators are formed in int64 and
// wrapped to int32, which equals TFLM's int32 sums wherever those are defined.
#include "kernels/arm_nn_lstm.hpp"
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_lstm_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size) {
  if (hidden_size < 1 || batch_size < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t hb = size_detail::mul(hidden_size, batch_size);
  if (hb < 0) return ARM_CMSIS_NN_ARG_ERROR;
  // 2*hb (temp1) + 2*hb (temp2) + 2*hb (cell) + hb (hidden)
  return size_detail::mul(7, hb);
}

namespace {

// sigmoid(i / 24) in Q0.16 for i = 0 .. 255 (the last entry saturated to 65535): the table TFLite's
// integer Logistic/Tanh and CMSIS-NN interpolate in. Numeric data, needed verbatim for bit-exactness.
const uint16_t kSigmoidTable[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

inline int16_t sat16(int32_t v) { return static_cast<int16_t>(arm_nn_clamp(v, INT16_MIN, INT16_MAX)); }

bool shift_ok(int32_t s) { return s >= -31 && s <= 30; }

bool gate_ok(const cmsis_nn_lstm_gate& g) {
  return g.input_weights != nullptr && g.input_effective_bias != nullptr && g.hidden_weights != nullptr &&
         g.hidden_effective_bias != nullptr && shift_ok(g.input_shift) && shift_ok(g.hidden_shift) &&
         (g.activation_type == ARM_SIGMOID || g.activation_type == ARM_TANH);
}

int32_t dot_s8(const int8_t* a, const int8_t* b, int32_t n, int32_t bias) {
  int64_t acc = bias;
  for (int32_t i = 0; i < n; ++i) acc += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return arm_nn_wrap_s32(acc);
}

// Pre-activation of one gate for one batch (Q3.12), then its activation in place.
void lstm_gate(const cmsis_nn_lstm_gate& g, const int8_t* x, int32_t input_size, const int8_t* h,
               int32_t hidden_size, int16_t* out) {
  for (int32_t r = 0; r < hidden_size; ++r) {
    const int32_t in_acc = dot_s8(x, g.input_weights + static_cast<int64_t>(r) * input_size, input_size,
                                  g.input_effective_bias[r]);
    const int32_t h_acc = dot_s8(h, g.hidden_weights + static_cast<int64_t>(r) * hidden_size, hidden_size,
                                 g.hidden_effective_bias[r]);
    const int16_t a = sat16(arm_nn_requantize(in_acc, g.input_multiplier, g.input_shift));
    const int16_t b = sat16(arm_nn_requantize(h_acc, g.hidden_multiplier, g.hidden_shift));
    out[r] = sat16(static_cast<int32_t>(a) + static_cast<int32_t>(b));
  }
  (void)arm_nn_activation_s16(out, out, hidden_size, 0, g.activation_type);
}

}  // namespace

arm_cmsis_nn_status arm_nn_activation_s16(const int16_t* input, int16_t* output, int32_t size, int32_t left_shift,
                                          arm_nn_activation_type type) {
  if (input == nullptr || output == nullptr || size < 0 || left_shift < -31 || left_shift > 30 ||
      (type != ARM_SIGMOID && type != ARM_TANH)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const bool sigmoid = type == ARM_SIGMOID;
  // sigmoid: the table step is 2^9 input units (input * 3 in Q3.12 -> i / 24); tanh(x) = 2 sigmoid(2x) - 1
  // halves it to 2^8.
  const int32_t step_bits = sigmoid ? 9 : 8;
  const int64_t multiplier = left_shift < 0 ? 3 : (int64_t{3} << left_shift);
  const int32_t right = left_shift < 0 ? -left_shift : 0;
  const int64_t rounding = right > 0 ? (int64_t{1} << (right - 1)) : 0;
  for (int32_t i = 0; i < size; ++i) {
    const int64_t v = (static_cast<int64_t>(input[i]) * multiplier + rounding) >> right;
    const int64_t mag = v < 0 ? -v : v;
    const int64_t idx = mag >> step_bits;
    int32_t interp;  // |f| on the table's scale, with step_bits fractional bits
    if (idx >= 255) {
      interp = sigmoid ? (0x7FFF << 10) : (0xFFFF << 8);
    } else {
      const int32_t lo = kSigmoidTable[idx];
      const int32_t hi = kSigmoidTable[idx + 1];
      const int32_t frac = static_cast<int32_t>(mag & ((int64_t{1} << step_bits) - 1));
      interp = lo * (int32_t{1} << step_bits) + frac * (hi - lo);
    }
    int32_t r;
    if (sigmoid) {
      // Q0.16 with 9 fraction bits -> Q0.15: round; a negative input mirrors around 1/2.
      r = v >= 0 ? (interp + (1 << 9)) >> 10 : ((1 << 25) - interp + (1 << 9) - 1) >> 10;
    } else {
      // 2 sigmoid - 1: subtract 1/2 on the Q0.16 scale (2^23 with 8 fraction bits), round to Q0.15.
      r = v >= 0 ? (interp - (1 << 23) + (1 << 7)) >> 8 : ((1 << 23) - interp + (1 << 7) - 1) >> 8;
    }
    output[i] = static_cast<int16_t>(r);
  }
  return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_lstm_unidirectional_s8(const cmsis_nn_context* ctx, const int8_t* input,
                                               const cmsis_nn_lstm_params* params, int8_t* output) {
  if (ctx == nullptr || ctx->buf == nullptr || input == nullptr || params == nullptr || output == nullptr) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const cmsis_nn_lstm_params& p = *params;
  const int32_t B = p.batch_size, T = p.time_steps, I = p.input_size, H = p.hidden_size;
  if (B < 1 || T < 1 || I < 1 || H < 1) return ARM_CMSIS_NN_ARG_ERROR;
  // every index below stays in int32; dot products of up to 2^16 terms stay far from int64 limits
  if (I > 65536 || H > 65536) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t tb = size_detail::mul(T, B);
  if (tb < 0 || size_detail::mul(tb, I) < 0 || size_detail::mul(tb, H) < 0) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t need = arm_lstm_unidirectional_s8_get_buffer_size(H, B);
  if (need < 0 || ctx->size < need || (reinterpret_cast<uintptr_t>(ctx->buf) & 1u) != 0) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (p.input_offset < -127 || p.input_offset > 128 || p.output_offset < -128 || p.output_offset > 127 ||
      !shift_ok(p.forget_to_cell_shift) || !shift_ok(p.input_to_cell_shift) || !shift_ok(p.output_shift) ||
      p.cell_clip < 0 || p.cell_clip > INT16_MAX || p.cell_scale_power < -43 || p.cell_scale_power > 18 ||
      !gate_ok(p.input_gate) || !gate_ok(p.forget_gate) || !gate_ok(p.cell_gate) || !gate_ok(p.output_gate)) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }

  const int32_t hb = H * B;
  int16_t* const temp1 = static_cast<int16_t*>(ctx->buf);
  int16_t* const temp2 = temp1 + hb;
  int16_t* const cell = temp2 + hb;
  int8_t* const hidden = reinterpret_cast<int8_t*>(cell + hb);
  for (int32_t i = 0; i < hb; ++i) {
    cell[i] = 0;
    hidden[i] = static_cast<int8_t>(p.output_offset);
  }
  const int32_t tanh_shift = p.cell_scale_power + 12;

  for (int32_t t = 0; t < T; ++t) {
    for (int32_t b = 0; b < B; ++b) {
      const int32_t row = p.time_major != 0 ? t * B + b : b * T + t;
      const int8_t* x = input + row * I;
      int8_t* h = hidden + b * H;
      int16_t* g1 = temp1 + b * H;
      int16_t* g2 = temp2 + b * H;
      int16_t* c = cell + b * H;

      lstm_gate(p.forget_gate, x, I, h, H, g1);
      for (int32_t j = 0; j < H; ++j) {
        c[j] = sat16(arm_nn_requantize(static_cast<int32_t>(g1[j]) * c[j], p.forget_to_cell_multiplier,
                                       p.forget_to_cell_shift));
      }
      lstm_gate(p.input_gate, x, I, h, H, g1);
      lstm_gate(p.cell_gate, x, I, h, H, g2);
      for (int32_t j = 0; j < H; ++j) {
        const int16_t ig = sat16(arm_nn_requantize(static_cast<int32_t>(g1[j]) * g2[j], p.input_to_cell_multiplier,
                                                   p.input_to_cell_shift));
        int32_t v = sat16(static_cast<int32_t>(c[j]) + ig);
        if (p.cell_clip > 0) v = arm_nn_clamp(v, -p.cell_clip, p.cell_clip);
        c[j] = static_cast<int16_t>(v);
      }
      lstm_gate(p.output_gate, x, I, h, H, g1);
      (void)arm_nn_activation_s16(c, g2, H, tanh_shift, ARM_TANH);
      int8_t* out = output + row * H;
      for (int32_t j = 0; j < H; ++j) {
        const int32_t q = arm_nn_requantize(static_cast<int32_t>(g1[j]) * g2[j], p.output_multiplier, p.output_shift);
        h[j] = arm_nn_sat_s8(arm_nn_wrap_s32(static_cast<int64_t>(q) + p.output_offset));
        out[j] = h[j];
      }
    }
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
