// The runtime's steps on the real CMSIS-NN (firmware option -DHARCORE_KERNELS=cmsis-nn, docs/firmware.md).
//
// harcore's runtime (src/cpp/runtime/harcore_runtime.cpp) asks `backend_run_step` first for every step when it
// is compiled with HARCORE_RUNTIME_BACKEND; this file answers for the steps CMSIS-NN has a function for, by
// converting the step's arguments (harcore::kernels structs, the same fields and units) into CMSIS-NN's C
// structs and calling the user's library, built from HARCORE_CMSIS_NN_DIR by its own CMake. Every other step
// (GRU, SUB, clamp, tanh/logistic, reductions, copies, gathers, leaky ReLU) returns kBackendNotHandled and
// runs on harcore's kernel, and `backend_step_name` says so: the image prints that table before it runs.
//
// Nothing of CMSIS-NN is part of harcore; this glue only includes its public header.
#include <stdint.h>

#include "arm_nnfunctions.h"  // CMSIS-NN (global namespace, C linkage)
#include "backend.hpp"
#include "console.hpp"
#include "runtime/harcore_runtime.hpp"
#include "runtime/strided_binary.hpp"

#ifndef HARCORE_CMSIS_NN_SCRATCH_BYTES
#define HARCORE_CMSIS_NN_SCRATCH_BYTES 8192
#endif

namespace harcore {
namespace rt {

namespace {

namespace hk = harcore::kernels;

// CMSIS-NN's scratch for a step whose arena scratch (sized for harcore's kernel) is too small. One pool, reused
// by every step: steps run one at a time and CMSIS-NN keeps nothing in it between calls.
alignas(8) int8_t g_pool[HARCORE_CMSIS_NN_SCRATCH_BYTES > 0 ? HARCORE_CMSIS_NN_SCRATCH_BYTES : 1];

::cmsis_nn_dims dims(const hk::cmsis_nn_dims& d) { return {d.n, d.h, d.w, d.c}; }
::cmsis_nn_tile tile(const hk::cmsis_nn_tile& t) { return {t.w, t.h}; }
::cmsis_nn_activation act(const hk::cmsis_nn_activation& a) { return {a.min, a.max}; }

::cmsis_nn_conv_params conv_params(const hk::cmsis_nn_conv_params& p) {
  return {p.input_offset, p.output_offset, tile(p.stride), tile(p.padding), tile(p.dilation), act(p.activation)};
}
::cmsis_nn_dw_conv_params dw_params(const hk::cmsis_nn_dw_conv_params& p) {
  return {p.input_offset, p.output_offset, p.ch_mult, tile(p.stride), tile(p.padding), tile(p.dilation),
          act(p.activation)};
}
::cmsis_nn_pool_params pool_params(const hk::cmsis_nn_pool_params& p) {
  return {tile(p.stride), tile(p.padding), act(p.activation)};
}
::cmsis_nn_fc_params fc_params(const hk::cmsis_nn_fc_params& p) {
  return {p.input_offset, p.filter_offset, p.output_offset, act(p.activation)};
}
::arm_nn_activation_type act_type(hk::arm_nn_activation_type t) {
  return t == hk::ARM_TANH ? ::ARM_TANH : ::ARM_SIGMOID;
}

// harcore's gate: the same fields as CMSIS-NN's (effective biases included: the lowering computes them as
// CMSIS-NN's unit tests do with arm_vector_sum_s8 — bias + input_offset * rowsum(W_in) for the input part,
// -zp_out * rowsum(W_h) for the recurrent part), less CMSIS-NN's `bias` pointer, which its s8 step never reads.
::cmsis_nn_lstm_gate gate(const hk::cmsis_nn_lstm_gate& g) {
  return {g.input_multiplier, g.input_shift, g.input_weights, g.input_effective_bias,
          g.hidden_multiplier, g.hidden_shift, g.hidden_weights, g.hidden_effective_bias,
          nullptr, act_type(g.activation_type)};
}

// harcore's struct lists the gates input/forget/cell/output, CMSIS-NN's forget/input/cell/output: mapped by
// name, never by position.
::cmsis_nn_lstm_params lstm_params(const hk::cmsis_nn_lstm_params& p) {
  return {p.time_major, p.batch_size, p.time_steps, p.input_size, p.hidden_size, p.input_offset,
          p.forget_to_cell_multiplier, p.forget_to_cell_shift, p.input_to_cell_multiplier, p.input_to_cell_shift,
          p.cell_clip, p.cell_scale_power, p.output_multiplier, p.output_shift, p.output_offset,
          gate(p.forget_gate), gate(p.input_gate), gate(p.cell_gate), gate(p.output_gate)};
}

// CMSIS-NN's LSTM has no buffer-size getter: its unit tests (and TFLM) give it two int16 temporaries and the
// int16 cell state of batch * hidden each; a null hidden state makes it start from zero state.
int32_t lstm_scratch_bytes(const hk::cmsis_nn_lstm_params& p) {
  return 3 * p.batch_size * p.hidden_size * static_cast<int32_t>(sizeof(int16_t));
}

// Bytes of CMSIS-NN scratch the step needs, from CMSIS-NN's own getters; -1 when CMSIS-NN does not run it.
int32_t scratch_need(const Step& s) {
  switch (s.kind) {
    case kConv: {
      const ConvArgs& a = *static_cast<const ConvArgs*>(s.args);
      const ::cmsis_nn_conv_params p = conv_params(a.conv);
      const ::cmsis_nn_dims in = dims(a.input_dims), f = dims(a.filter_dims), o = dims(a.output_dims);
      return ::arm_convolve_wrapper_s8_get_buffer_size(&p, &in, &f, &o);
    }
    case kDepthwise: {
      const DepthwiseArgs& a = *static_cast<const DepthwiseArgs*>(s.args);
      const ::cmsis_nn_dw_conv_params p = dw_params(a.dw);
      const ::cmsis_nn_dims in = dims(a.input_dims), f = dims(a.filter_dims), o = dims(a.output_dims);
      return ::arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &f, &o);
    }
    case kFullyConnected: {
      const FullyConnectedArgs& a = *static_cast<const FullyConnectedArgs*>(s.args);
      const ::cmsis_nn_dims f{a.depth, 1, 1, a.out_features};
      return ::arm_fully_connected_s8_get_buffer_size(&f);
    }
    case kBatchMatMul: {  // CMSIS-NN documents the FC getter for it (rhs row sums on Helium)
      const BatchMatMulArgs& a = *static_cast<const BatchMatMulArgs*>(s.args);
      const ::cmsis_nn_dims f{a.rhs_dims.c, 1, 1, a.rhs_dims.w};
      return ::arm_fully_connected_s8_get_buffer_size(&f);
    }
    case kAvgPool: {
      const PoolArgs& a = *static_cast<const PoolArgs*>(s.args);
      return ::arm_avgpool_s8_get_buffer_size(a.output_dims.w, a.input_dims.c);
    }
    case kLstm: {
      const LstmArgs& a = *static_cast<const LstmArgs*>(s.args);
      const int32_t n0 = lstm_scratch_bytes(a.dir[0]);
      const int32_t n1 = a.num_directions == 2 ? lstm_scratch_bytes(a.dir[1]) : 0;
      return n0 > n1 ? n0 : n1;
    }
    case kMaxPool:
    case kSoftmax:
    case kMul:
    case kAddBcast:
      return 0;
    case kAdd:  // CMSIS-NN has no elementwise SUB
      return static_cast<const AddArgs*>(s.args)->subtract != 0 ? -1 : 0;
    default:
      return -1;
  }
}

// The step's arena scratch when CMSIS-NN's need fits there (harcore's sizes follow CMSIS-NN's DSP build, so
// it usually does), else the pool; buf is null (and the step fails with an argument error) when neither fits.
::cmsis_nn_context scratch_for(const Step& s, int8_t* arena, int32_t need) {
  ::cmsis_nn_context ctx{nullptr, 0};
  if (need <= 0) return ctx;
  if (s.scratch >= 0 && s.scratch_size >= need) {
    ctx.buf = arena + s.scratch;
  } else if (need <= HARCORE_CMSIS_NN_SCRATCH_BYTES) {
    ctx.buf = g_pool;
  } else {
    return ctx;
  }
  ctx.size = need;
  return ctx;
}

// Broadcasting ADD/MUL: runtime/strided_binary.hpp, the runtime's own loop, so this backend makes the same calls
// over the same rows. CMSIS-NN's arm_elementwise_mul_s8 takes two contiguous vectors, so kSpread's row buffer
// serves it as it serves harcore's kernel.

int32_t run_lstm(const LstmArgs& a, const int8_t* in0, int8_t* out, int8_t* arena, ::cmsis_nn_context ctx) {
  if (a.num_directions < 1 || a.num_directions > 2) return ::ARM_CMSIS_NN_ARG_ERROR;
  if (ctx.buf == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;
  for (int32_t d = 0; d < a.num_directions; ++d) {
    const hk::cmsis_nn_lstm_params& hp = a.dir[d];
    const ::cmsis_nn_lstm_params p = lstm_params(hp);
    int16_t* t = static_cast<int16_t*>(ctx.buf);
    const int32_t hb = hp.batch_size * hp.hidden_size;
    ::cmsis_nn_lstm_context buffers{t, t + hb, t + 2 * hb, nullptr};
    const int8_t* x = in0;
    int8_t* y = out;
    if (d == 1) {  // as the runtime: the backward direction reads its input time-reversed, writes the 2nd half
      if (a.reversed_input < 0) return ::ARM_CMSIS_NN_ARG_ERROR;
      int8_t* rev = arena + a.reversed_input;
      for (int32_t ts = 0; ts < hp.time_steps; ++ts) {
        const int8_t* src = in0 + ts * hp.input_size;
        int8_t* dst = rev + (hp.time_steps - 1 - ts) * hp.input_size;
        for (int32_t i = 0; i < hp.input_size; ++i) dst[i] = src[i];
      }
      x = rev;
      y = out + a.dir[0].time_steps * a.dir[0].hidden_size;
    }
    const int32_t st = ::arm_lstm_unidirectional_s8(x, y, &p, &buffers);
    if (st != ::ARM_CMSIS_NN_SUCCESS) return st;
  }
  return ::ARM_CMSIS_NN_SUCCESS;
}

}  // namespace

const char* backend_step_name(const Step& s) {
  if (s.args == nullptr || scratch_need(s) < 0) return nullptr;
  switch (s.kind) {
    case kConv: return "arm_convolve_wrapper_s8";
    case kDepthwise: return "arm_depthwise_conv_wrapper_s8";
    case kFullyConnected: return "arm_fully_connected_per_channel_s8";
    case kMaxPool: return "arm_max_pool_s8";
    case kAvgPool: return "arm_avgpool_s8";
    case kAdd:
    case kAddBcast: return "arm_elementwise_add_s8";
    case kMul: return "arm_elementwise_mul_s8";
    case kSoftmax: return "arm_softmax_s8";
    case kLstm: return "arm_lstm_unidirectional_s8";
    case kBatchMatMul: return "arm_batch_matmul_s8";
    default: return nullptr;
  }
}

int32_t backend_report(const Model& m) {
  using harcore::fw::put;
  using harcore::fw::put_char;
  using harcore::fw::put_i32;
  int32_t unfit = 0;
  for (int32_t i = 0; i < m.num_steps; ++i) {
    const Step& s = m.steps[i];
    const char* fn = backend_step_name(s);
    put("backend ");
    put_i32(i);
    put(" kind=");
    put_i32(s.kind);
    if (fn == nullptr) {
      put(" harcore\n");
      continue;
    }
    const int32_t need = scratch_need(s);
    const bool in_arena = need <= 0 || (s.scratch >= 0 && s.scratch_size >= need);
    put(" cmsis-nn ");
    put(fn);
    put(" scratch=");
    put_i32(need);
    put(in_arena ? " in=arena\n" : (need <= HARCORE_CMSIS_NN_SCRATCH_BYTES ? " in=pool\n" : " in=none\n"));
    if (!in_arena && need > HARCORE_CMSIS_NN_SCRATCH_BYTES) {
      put("error: step ");
      put_i32(i);
      put(" needs ");
      put_i32(need);
      put(" B of CMSIS-NN scratch: more than its arena scratch and the pool of ");
      put_i32(HARCORE_CMSIS_NN_SCRATCH_BYTES);
      put(" B (-DHARCORE_CMSIS_NN_SCRATCH_BYTES)\n");
      ++unfit;
    }
  }
  return unfit;
}

int32_t backend_run_step(const Step& s, int8_t* arena) {
  const int32_t need = scratch_need(s);
  if (need < 0) return kBackendNotHandled;
  const int8_t* in0 = arena + s.input0;
  const int8_t* in1 = s.input1 >= 0 ? arena + s.input1 : nullptr;
  int8_t* out = arena + s.output;
  ::cmsis_nn_context ctx = scratch_for(s, arena, need);
  if (need > 0 && ctx.buf == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;  // neither the arena nor the pool holds it
  switch (s.kind) {
    case kConv: {
      const ConvArgs& a = *static_cast<const ConvArgs*>(s.args);
      const ::cmsis_nn_conv_params p = conv_params(a.conv);
      ::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const ::cmsis_nn_dims in = dims(a.input_dims), f = dims(a.filter_dims), o = dims(a.output_dims);
      const ::cmsis_nn_dims b{1, 1, 1, a.output_dims.c};
      return ::arm_convolve_wrapper_s8(&ctx, &p, &q, &in, in0, &f, a.filter, &b, a.bias, &o, out);
    }
    case kDepthwise: {
      const DepthwiseArgs& a = *static_cast<const DepthwiseArgs*>(s.args);
      const ::cmsis_nn_dw_conv_params p = dw_params(a.dw);
      ::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const ::cmsis_nn_dims in = dims(a.input_dims), f = dims(a.filter_dims), o = dims(a.output_dims);
      const ::cmsis_nn_dims b{1, 1, 1, a.output_dims.c};
      return ::arm_depthwise_conv_wrapper_s8(&ctx, &p, &q, &in, in0, &f, a.filter, &b, a.bias, &o, out);
    }
    case kFullyConnected: {
      const FullyConnectedArgs& a = *static_cast<const FullyConnectedArgs*>(s.args);
      const ::cmsis_nn_fc_params p = fc_params(a.fc);
      // CMSIS-NN's Helium build (not a Cortex-M33) asks for precomputed kernel sums here; its DSP and C builds
      // ask for no buffer. This glue does not compute them, so such a build is refused rather than guessed.
      if (need > 0) return ::ARM_CMSIS_NN_NO_IMPL_ERROR;
      ::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const ::cmsis_nn_dims in{a.batches, 1, 1, a.depth}, f{a.depth, 1, 1, a.out_features};
      const ::cmsis_nn_dims b{1, 1, 1, a.out_features}, o{a.batches, 1, 1, a.out_features};
      return ::arm_fully_connected_per_channel_s8(&ctx, &p, &q, &in, in0, &f, a.filter, &b, a.bias, &o, out);
    }
    case kMaxPool:
    case kAvgPool: {
      const PoolArgs& a = *static_cast<const PoolArgs*>(s.args);
      const ::cmsis_nn_pool_params p = pool_params(a.pool);
      const ::cmsis_nn_dims in = dims(a.input_dims), f = dims(a.filter_dims), o = dims(a.output_dims);
      return s.kind == kMaxPool ? ::arm_max_pool_s8(&ctx, &p, &in, in0, &f, &o, out)
                                : ::arm_avgpool_s8(&ctx, &p, &in, in0, &f, &o, out);
    }
    case kAdd: {
      const AddArgs& a = *static_cast<const AddArgs*>(s.args);
      if (in1 == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;
      const hk::cmsis_nn_add_params& p = a.p;
      return ::arm_elementwise_add_s8(in0, in1, p.input1_offset, p.input1_mult, p.input1_shift, p.input2_offset,
                                      p.input2_mult, p.input2_shift, p.left_shift, out, p.output_offset,
                                      p.output_mult, p.output_shift, a.act_min, a.act_max, a.size);
    }
    case kAddBcast: {
      const AddBcastArgs& a = *static_cast<const AddBcastArgs*>(s.args);
      if (in1 == nullptr) in1 = a.input1_data;  // a constant operand lives in flash
      if (in1 == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;
      const hk::cmsis_nn_add_params& p = a.p;
      return strided_binary(a, in0, in1, out, [&](const int8_t* x, const int8_t* y, int8_t* o, int32_t n) -> int32_t {
        return ::arm_elementwise_add_s8(x, y, p.input1_offset, p.input1_mult, p.input1_shift, p.input2_offset,
                                        p.input2_mult, p.input2_shift, p.left_shift, o, p.output_offset,
                                        p.output_mult, p.output_shift, a.act_min, a.act_max, n);
      });
    }
    case kMul: {
      const MulArgs& a = *static_cast<const MulArgs*>(s.args);
      if (in1 == nullptr) in1 = a.input1_data;
      if (in1 == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;
      const hk::cmsis_nn_mul_params& p = a.p;
      return strided_binary<true>(a, in0, in1, out, [&](const int8_t* x, const int8_t* y, int8_t* o, int32_t n) -> int32_t {
        return ::arm_elementwise_mul_s8(x, y, p.input1_offset, p.input2_offset, o, p.output_offset, p.output_mult,
                                        p.output_shift, a.act_min, a.act_max, n);
      });
    }
    case kSoftmax: {
      const SoftmaxArgs& a = *static_cast<const SoftmaxArgs*>(s.args);
      ::arm_softmax_s8(in0, a.rows, a.row_size, a.mult, a.shift, a.diff_min, out);
      return ::ARM_CMSIS_NN_SUCCESS;
    }
    case kLstm:
      return run_lstm(*static_cast<const LstmArgs*>(s.args), in0, out, arena, ctx);
    case kBatchMatMul: {
      const BatchMatMulArgs& a = *static_cast<const BatchMatMulArgs*>(s.args);
      if (in1 == nullptr) return ::ARM_CMSIS_NN_ARG_ERROR;
      if (need > 0) return ::ARM_CMSIS_NN_NO_IMPL_ERROR;  // Helium's rhs row sums, as for the FC above
      const ::cmsis_nn_bmm_params p{a.bmm.adj_x != 0, a.bmm.adj_y != 0, fc_params(a.bmm.fc_params)};
      const ::cmsis_nn_per_tensor_quant_params q{a.quant.multiplier, a.quant.shift};
      const ::cmsis_nn_dims l = dims(a.lhs_dims), r = dims(a.rhs_dims), o = dims(a.output_dims);
      return ::arm_batch_matmul_s8(&ctx, &p, &q, &l, in0, &r, in1, &o, out);
    }
    default:
      return kBackendNotHandled;
  }
}

}  // namespace rt
}  // namespace harcore
