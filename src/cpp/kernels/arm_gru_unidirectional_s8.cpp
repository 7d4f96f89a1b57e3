// s8 GRU, harcore's scheme: one time step is an unrolled sequence of TFLite int8 builtin ops (docs/int8.md,
// "The GRU scheme"), so the same GRU exported as plain TFLite ops is bit-exact with TFLM:
//   gx_{r,z,n} = FC(x_t), gh_{r,z,n} = FC(h)        arm_fully_connected_per_channel_s8
//   r = LOGISTIC(ADD(gx_r, gh_r)), z = LOGISTIC(ADD(gx_z, gh_z))
//   n = TANH(ADD(gx_n, MUL(r, gh_n)))
//   h' = ADD(n, MUL(z, SUB(h, n)))                    (= (1 - z) n + z h, torch's GRU)
// The previous hidden state is read back from the previous output row (the zero point at the first step).
//
// Scratch layout (caller-owned, int8, batch 1):
//   offset 0    gx[3H]   input-side FC outputs r, z, n
//   offset 3H   gh[3H]   hidden-side FC outputs r, z, n (gh_r, gh_z then hold d = h - n and zd = z d)
//   offset 6H   r[H], z[H], n[H]   (r_pre / z_pre / n_pre in place before their activation)
//   total       9H bytes
// A bidirectional layer runs its directions one after the other and reuses the same block.
#include "kernels/arm_nn_gru.hpp"
#include "kernels/arm_nn_size.hpp"
#include "kernels/arm_nnfunctions.hpp"

namespace harcore {
namespace kernels {

int32_t arm_gru_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size) {
  if (hidden_size < 1 || batch_size < 1) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t hb = size_detail::mul(hidden_size, batch_size);
  if (hb < 0) return ARM_CMSIS_NN_ARG_ERROR;
  // 3*hb (gx) + 3*hb (gh) + 3*hb (r, z, n)
  return size_detail::mul(9, hb);
}

namespace {

arm_cmsis_nn_status fc(const cmsis_nn_gru_fc& f, const int8_t* in, int32_t depth, int32_t input_offset,
                       int32_t rows, int8_t* out) {
  cmsis_nn_context ctx{nullptr, 0};
  cmsis_nn_fc_params p{input_offset, 0, f.output_offset, {INT8_MIN, INT8_MAX}};
  cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(f.multiplier), const_cast<int32_t*>(f.shift)};
  const cmsis_nn_dims in_dims{1, 1, 1, depth};
  const cmsis_nn_dims filter_dims{depth, 1, 1, rows};
  const cmsis_nn_dims bias_dims{1, 1, 1, rows};
  const cmsis_nn_dims out_dims{1, 1, 1, rows};
  return arm_fully_connected_per_channel_s8(&ctx, &p, &q, &in_dims, in, &filter_dims, f.weights, &bias_dims, f.bias,
                                            &out_dims, out);
}

arm_cmsis_nn_status add(const cmsis_nn_add_params& a, const int8_t* x, const int8_t* y, int8_t* out, int32_t n) {
  return arm_elementwise_add_s8(x, y, a.input1_offset, a.input1_mult, a.input1_shift, a.input2_offset, a.input2_mult,
                                a.input2_shift, a.left_shift, out, a.output_offset, a.output_mult, a.output_shift,
                                INT8_MIN, INT8_MAX, n);
}

arm_cmsis_nn_status mul(const cmsis_nn_mul_params& m, const int8_t* x, const int8_t* y, int8_t* out, int32_t n) {
  return arm_elementwise_mul_s8(x, y, m.input1_offset, m.input2_offset, out, m.output_offset, m.output_mult,
                                m.output_shift, INT8_MIN, INT8_MAX, n);
}

}  // namespace

arm_cmsis_nn_status arm_gru_unidirectional_s8(const cmsis_nn_context* ctx, const int8_t* input,
                                              const cmsis_nn_gru_params* params, int8_t* output) {
  if (ctx == nullptr || ctx->buf == nullptr || input == nullptr || params == nullptr || output == nullptr) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  const cmsis_nn_gru_params& p = *params;
  const int32_t T = p.time_steps, I = p.input_size, H = p.hidden_size;
  if (T < 1 || I < 1 || H < 1 || p.output_stride < H || p.hidden_zero_point < -128 || p.hidden_zero_point > 127) {
    return ARM_CMSIS_NN_ARG_ERROR;
  }
  if (size_detail::mul(T, I) < 0 || size_detail::mul(T, p.output_stride) < 0) return ARM_CMSIS_NN_ARG_ERROR;
  const int32_t need = arm_gru_unidirectional_s8_get_buffer_size(H, 1);
  if (need < 0 || ctx->size < need) return ARM_CMSIS_NN_ARG_ERROR;
  for (int g = 0; g < 3; ++g) {
    if (p.x_fc[g].weights == nullptr || p.h_fc[g].weights == nullptr) return ARM_CMSIS_NN_ARG_ERROR;
  }

  int8_t* const gx = static_cast<int8_t*>(ctx->buf);
  int8_t* const gh = gx + 3 * H;
  int8_t* const r = gh + 3 * H;
  int8_t* const z = r + H;
  int8_t* const n = z + H;
  const int32_t hidden_offset = -p.hidden_zero_point;

  for (int32_t k = 0; k < T; ++k) {
    const int32_t t = p.reverse != 0 ? T - 1 - k : k;
    const int8_t* x = input + t * I;
    int8_t* out = output + t * p.output_stride;
    // previous hidden state: the previous step's output row, or the zero point at the start (kept in n)
    const int8_t* h;
    if (k == 0) {
      for (int32_t j = 0; j < H; ++j) n[j] = static_cast<int8_t>(p.hidden_zero_point);
      h = n;
    } else {
      h = output + (p.reverse != 0 ? t + 1 : t - 1) * p.output_stride;
    }
    arm_cmsis_nn_status st = ARM_CMSIS_NN_SUCCESS;
    for (int g = 0; g < 3 && st == ARM_CMSIS_NN_SUCCESS; ++g) {
      st = fc(p.x_fc[g], x, I, p.input_offset, H, gx + g * H);
      if (st == ARM_CMSIS_NN_SUCCESS) st = fc(p.h_fc[g], h, H, hidden_offset, H, gh + g * H);
    }
    if (st != ARM_CMSIS_NN_SUCCESS) return st;
    // the gates read h no more; from here h may be overwritten (it may live in n at k == 0, see below)
    const bool h_in_n = k == 0;
    int8_t* const d = gh;       // gh_r is free after r_pre
    int8_t* const zd = gh + H;  // gh_z is free after z_pre
    if ((st = add(p.add_r, gx, gh, r, H)) != ARM_CMSIS_NN_SUCCESS) return st;
    if ((st = add(p.add_z, gx + H, gh + H, z, H)) != ARM_CMSIS_NN_SUCCESS) return st;
    if ((st = arm_logistic_s8(r, r, H, &p.sig_r)) != ARM_CMSIS_NN_SUCCESS) return st;
    if ((st = arm_logistic_s8(z, z, H, &p.sig_z)) != ARM_CMSIS_NN_SUCCESS) return st;
    // h at k == 0 is the constant zero point: copy it to `out` before n overwrites it, and read it there
    if (h_in_n) {
      for (int32_t j = 0; j < H; ++j) out[j] = n[j];
      h = out;
    }
    if ((st = mul(p.mul_rn, r, gh + 2 * H, r, H)) != ARM_CMSIS_NN_SUCCESS) return st;  // rn into r
    if ((st = add(p.add_n, gx + 2 * H, r, n, H)) != ARM_CMSIS_NN_SUCCESS) return st;
    if ((st = arm_tanh_s8(n, n, H, &p.tanh_n)) != ARM_CMSIS_NN_SUCCESS) return st;
    const cmsis_nn_add_params& s = p.sub_d;
    if ((st = arm_elementwise_sub_s8(h, n, s.input1_offset, s.input1_mult, s.input1_shift, s.input2_offset,
                                     s.input2_mult, s.input2_shift, s.left_shift, d, s.output_offset, s.output_mult,
                                     s.output_shift, INT8_MIN, INT8_MAX, H)) != ARM_CMSIS_NN_SUCCESS) {
      return st;
    }
    if ((st = mul(p.mul_zd, z, d, zd, H)) != ARM_CMSIS_NN_SUCCESS) return st;
    if ((st = add(p.add_h, n, zd, out, H)) != ARM_CMSIS_NN_SUCCESS) return st;
  }
  return ARM_CMSIS_NN_SUCCESS;
}

}  // namespace kernels
}  // namespace harcore
