// Analytical cost model (specification: docs/cost-model.md; conventions: cost_model.hpp).
//
// ---------------------------------------------------------------------------------------------------
// ptflops_macs rule table — what ptflops 0.7.5 counts with backend='pytorch', count_functional=True,
// for the torch module / call the tracer maps to each op (read from ptflops/pytorch_ops.py and
// pytorch_engine.py). Module hooks and patched functionals BOTH fire when a module's forward calls a
// patched functional, so several modules are counted twice. n_in / n_out = input / output numel.
//
//   conv  (nn.Conv1d/2d)            n_out*C_in/g*KH*KW  + (bias ? n_out : 0)
//   linear (nn.Linear)              n_out*in            + (bias ? n_out : 0)   (F.linear is not patched)
//   batchnorm (nn.BatchNorm*)       affine ? 2*n_in : n_in                     (F.batch_norm not patched)
//   activation, factor * n_in:      ReLU 2 (module + F.relu), ReLU6 1 (module; F.hardtanh not patched),
//                                   ELU 2, GELU 2, LeakyReLU 1 (F.leaky_relu not patched),
//                                   SiLU 1 (F.silu only; nn.SiLU has no module hook),
//                                   Sigmoid / Tanh / Hardtanh / Identity 0
//   pool (nn.Max/AvgPool1d/2d)      2*n_in  (pool hook n_in + F.max/avg_pool n_in)
//   globalpool (nn.AdaptiveAvg/MaxPool) 2*n_in (same reason)
//   softmax (nn.Softmax / F.softmax) n_in
//   add (torch.add / Tensor.add)    n_out   (the `+` operator is not patched: a tracer that sees `+`
//                                            and wants ptflops' figure must account for that itself)
//   mul (torch.mul / Tensor.mul)    n_out   (broadcast result size)
//   matmul (torch.matmul/bmm)       numel(A) * N
//   rnn (nn.LSTM / nn.GRU), one layer: T * dirs * (G*H*I + G*H*H + E*H + (bias ? 2*G*H : 0)),
//                                   E = 10 (LSTM: 4 adds + 3 + 3 Hadamard), 7 (GRU: 1 + 3 + 3)
//   layernorm (nn.LayerNorm)        n_in  (bn hook; LayerNorm has no `affine` attribute, so never 2x)
//   add / mul with a parameter      n_out (torch.add / torch.mul; the `+` / `*` operators: form 2, 0;
//                                   ptflops broadcasts left-aligned, so it agrees only for a parameter of
//                                   the activation's torch rank)
//   input, reshape, transpose, slice, concat, mean, gather, dft (torch.fft is not patched): 0
// These are the rules for Op::ptflops_form 0 (module / torch.* spelling). Form 1 (a patched F.*
// functional, e.g. F.relu, F.softmax, F.max_pool1d, F.linear) counts n_in once (F.linear: n_in*out +
// out; F.layer_norm is not patched and gets form 2); form 2 (a spelling ptflops does not see: `+`, `*`, torch.softmax, einsum ...) counts 0.
// Adjust the constants in namespace `ptflops_rules` below if a comparison with ptflops disagrees.
// ---------------------------------------------------------------------------------------------------
#include "cost/cost_model.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "kernels/arm_nnfunctions.hpp"

namespace harcore {

namespace ptflops_rules {
// Elements counted per activation kind, indexed by ActKind.
constexpr int64_t kActFactor[] = {
    /*ReLU*/ 2, /*ReLU6*/ 1, /*Sigmoid*/ 0, /*Tanh*/ 0, /*LeakyReLU*/ 1,
    /*ELU*/ 2,  /*GELU*/ 2,  /*Hardtanh*/ 0, /*SiLU*/ 1, /*Identity*/ 0,
};
// F.relu, F.relu6, F.elu, F.gelu, F.silu (and F.prelu) are patched; the others are not.
constexpr int64_t kActFunctional[] = {
    /*ReLU*/ 1, /*ReLU6*/ 1, /*Sigmoid*/ 0, /*Tanh*/ 0, /*LeakyReLU*/ 0,
    /*ELU*/ 1,  /*GELU*/ 1,  /*Hardtanh*/ 0, /*SiLU*/ 1, /*Identity*/ 0,
};
constexpr int64_t kPoolFactor = 2;        // x n_in
constexpr int64_t kGlobalPoolFactor = 2;  // x n_in
constexpr int64_t kSoftmaxFactor = 1;     // x n_in
constexpr int64_t kAddFactor = 1;         // x n_out
constexpr int64_t kMulFactor = 1;         // x n_out
constexpr int64_t kBnAffineFactor = 2;    // x n_in
constexpr int64_t kBnPlainFactor = 1;     // x n_in
constexpr int64_t kLayerNormFactor = 1;   // x n_in (nn.LayerNorm has no `affine`; F.layer_norm not patched)
constexpr int64_t kLstmElementwise = 10;  // x H per step and direction
constexpr int64_t kGruElementwise = 7;    // x H per step and direction
}  // namespace ptflops_rules

namespace {

namespace k = harcore::kernels;

enum Lowering : uint8_t { kExec = 0, kFused = 1, kAlias = 2 };

// Reusable per-call arrays (the batch API keeps one across rows).
struct Workspace {
  std::vector<int32_t> producer;   // per tensor: op writing it, -1
  std::vector<int32_t> readers;    // per tensor: number of reads
  std::vector<int32_t> last_read;  // per tensor: last op reading it, -1
  std::vector<int32_t> buf;        // per tensor: root tensor of its buffer
  std::vector<uint8_t> is_out;     // per tensor: graph output
  std::vector<int32_t> start, end; // per root tensor: live range (op indices)
  std::vector<int64_t> bytes;      // per root tensor
  std::vector<uint8_t> low;        // per op: Lowering
  std::vector<int64_t> live;       // per op (+1): bytes of live buffers, as a difference array first

  void reset(size_t nt, size_t no) {
    producer.assign(nt, -1);
    readers.assign(nt, 0);
    last_read.assign(nt, -1);
    buf.assign(nt, -1);
    is_out.assign(nt, 0);
    start.assign(nt, -1);
    end.assign(nt, -1);
    bytes.assign(nt, 0);
    low.assign(no, kExec);
    live.assign(no + 1, 0);
  }
};

bool known_act(ActKind a) {
  const auto v = static_cast<int32_t>(a);
  return v >= 0 && v <= static_cast<int32_t>(ActKind::Identity);
}

// Checked (throws GraphError naming op and field) or wrapping (no UB) int64 arithmetic.
template <bool Checked>
struct Arith {
  const Graph& g;
  int64_t op = -1;

  [[noreturn]] void overflow(const char* field) const {
    std::string m;
    if (op >= 0) {
      const Op& o = g.ops[static_cast<size_t>(op)];
      m = "op " + std::to_string(op) + " '" + o.name + "' (" + op_kind_name(o.kind) + "): field '" + field +
          "' makes a cost figure overflow int64";
    } else {
      m = std::string("graph: the total '") + field + "' overflows int64";
    }
    throw GraphError(m);
  }
  [[noreturn]] void fail(const char* field, const std::string& what) const {
    const Op& o = g.ops[static_cast<size_t>(op)];
    throw GraphError("op " + std::to_string(op) + " '" + o.name + "' (" + op_kind_name(o.kind) + "): field '" +
                     field + "' " + what);
  }
  int64_t mul(int64_t a, int64_t b, const char* field) const {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
      if constexpr (Checked) overflow(field);
    }
    return r;
  }
  int64_t add(int64_t a, int64_t b, const char* field) const {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
      if constexpr (Checked) overflow(field);
    }
    return r;
  }
  int64_t numel(const std::vector<int64_t>& s, const char* field) const {
    int64_t n = 1;
    for (int64_t d : s) n = mul(n, d, field);
    return n;
  }
  // A size handed to the int32 kernel API.
  int32_t i32(int64_t v, const char* field) const {
    if constexpr (Checked) {
      if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
        fail(field, "= " + std::to_string(v) + " does not fit the kernels' int32 dimensions");
      }
    }
    return static_cast<int32_t>(v);
  }
  int64_t scratch(int32_t r, const char* field) const {
    if (r < 0) {
      if constexpr (Checked) fail(field, "gives a kernel scratch buffer that does not fit int32");
      return 0;
    }
    return r;
  }
};

// NHWC dims of a (C, T) / (C, H, W) / (C,) activation, batch 1. Higher ranks fold into W.
template <bool Checked>
k::cmsis_nn_dims nhwc(const Arith<Checked>& ar, const std::vector<int64_t>& s, const char* field) {
  k::cmsis_nn_dims d{1, 1, 1, 1};
  if (s.empty()) return d;
  d.c = ar.i32(s[0], field);
  if (s.size() == 2) {
    d.w = ar.i32(s[1], field);
  } else if (s.size() >= 3) {
    d.h = ar.i32(s[1], field);
    int64_t w = 1;
    for (size_t i = 2; i < s.size(); ++i) w = ar.mul(w, s[i], field);
    d.w = ar.i32(w, field);
  }
  return d;
}

// Scratch of a depthwise conv with a 1-deep kernel (an unfolded batchnorm) or a real depthwise conv.
template <bool Checked>
int64_t depthwise_scratch(const Arith<Checked>& ar, const Op& op, const std::vector<int64_t>& in,
                          const std::vector<int64_t>& out, bool unit_kernel) {
  k::cmsis_nn_dw_conv_params p{};
  k::cmsis_nn_dims id = nhwc(ar, in, "inputs");
  k::cmsis_nn_dims od = nhwc(ar, out, "output");
  k::cmsis_nn_dims fd{1, 1, 1, od.c};
  if (unit_kernel) {
    p.ch_mult = 1;
    p.stride = {1, 1};
    p.padding = {0, 0};
    p.dilation = {1, 1};
  } else {
    p.ch_mult = ar.i32(op.out_channels / op.in_channels, "out_channels");
    p.stride = {ar.i32(op.stride[1], "stride"), ar.i32(op.stride[0], "stride")};
    p.padding = {ar.i32(std::max(op.pad[2], op.pad[3]), "pad"), ar.i32(std::max(op.pad[0], op.pad[1]), "pad")};
    p.dilation = {ar.i32(op.dilation[1], "dilation"), ar.i32(op.dilation[0], "dilation")};
    fd.h = ar.i32(op.kernel[0], "kernel");
    fd.w = ar.i32(op.kernel[1], "kernel");
  }
  return ar.scratch(k::arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(&p, &id, &fd, &od), "kernel");
}

template <bool Checked>
int64_t conv_scratch(const Arith<Checked>& ar, const Op& op, const std::vector<int64_t>& in,
                     const std::vector<int64_t>& out) {
  // The rule of harcore.quant.lower.is_depthwise: groups == C_in, and a single-channel input only with one output
  // channel (C_in = 1 with C_out > 1 would be the generic ch_mult kernel, slower than the conv).
  const bool depthwise = op.groups == op.in_channels && (op.in_channels > 1 || op.out_channels == 1);
  if (depthwise) return depthwise_scratch(ar, op, in, out, false);
  k::cmsis_nn_conv_params p{};
  // The padding tile carries the larger side so that any padding disables the 1x1 path.
  p.stride = {ar.i32(op.stride[1], "stride"), ar.i32(op.stride[0], "stride")};
  p.padding = {ar.i32(std::max(op.pad[2], op.pad[3]), "pad"), ar.i32(std::max(op.pad[0], op.pad[1]), "pad")};
  p.dilation = {ar.i32(op.dilation[1], "dilation"), ar.i32(op.dilation[0], "dilation")};
  k::cmsis_nn_dims id = nhwc(ar, in, "inputs");
  k::cmsis_nn_dims od = nhwc(ar, out, "output");
  k::cmsis_nn_dims fd{ar.i32(op.out_channels, "out_channels"), ar.i32(op.kernel[0], "kernel"),
                      ar.i32(op.kernel[1], "kernel"), ar.i32(op.in_channels / op.groups, "groups")};
  return ar.scratch(k::arm_convolve_wrapper_s8_get_buffer_size_dsp(&p, &id, &fd, &od), "kernel");
}

// Costs of one op that does not depend on lowering (macs, ptflops, params) plus flash and scratch
// given the lowering. `low` is the op's Lowering.
template <bool Checked>
void op_cost(const Arith<Checked>& ar, const Graph& g, const Op& op, uint8_t low, OpCost& c) {
  const auto& out = g.tensors[static_cast<size_t>(op.output)].shape;
  const int64_t n_out = ar.numel(out, "output");
  c.out_elems = n_out;
  static const std::vector<int64_t> kNone;
  const auto& in = op.inputs.empty() ? kNone : g.tensors[static_cast<size_t>(op.inputs[0])].shape;
  const int64_t n_in = ar.numel(in, "inputs");
  const bool exec = low == kExec;

  switch (op.kind) {
    case OpKind::Input: break;
    case OpKind::Conv: {
      const int64_t cin_g = op.in_channels / op.groups;
      const int64_t per_out = ar.mul(ar.mul(cin_g, op.kernel[0], "kernel"), op.kernel[1], "kernel");
      const int64_t w = ar.mul(op.out_channels, per_out, "out_channels");
      c.macs = ar.mul(n_out, per_out, "kernel");
      c.params = op.bias ? ar.add(w, op.out_channels, "bias") : w;
      c.ptflops_macs = op.bias ? ar.add(c.macs, n_out, "bias") : c.macs;
      c.flash = ar.add(w, ar.mul(12, op.out_channels, "out_channels"), "out_channels");
      if (exec) c.scratch = conv_scratch(ar, op, in, out);
      break;
    }
    case OpKind::Linear: {
      const int64_t w = ar.mul(op.in_channels, op.out_channels, "out_channels");
      c.macs = ar.mul(n_out, op.in_channels, "in_channels");
      c.params = op.bias ? ar.add(w, op.out_channels, "bias") : w;
      c.ptflops_macs = op.bias ? ar.add(c.macs, n_out, "bias") : c.macs;
      c.flash = ar.add(w, ar.mul(12, op.out_channels, "out_channels"), "out_channels");
      break;
    }
    case OpKind::BatchNorm: {
      c.params = op.bias ? ar.mul(2, op.in_channels, "in_channels") : 0;
      c.ptflops_macs =
          ar.mul(op.bias ? ptflops_rules::kBnAffineFactor : ptflops_rules::kBnPlainFactor, n_in, "inputs");
      if (exec) {  // runs as a depthwise 1x1 conv
        c.flash = ar.mul(13, op.in_channels, "in_channels");
        c.scratch = depthwise_scratch(ar, op, in, out, true);
      }
      break;
    }
    case OpKind::Activation: {
      const int64_t f = known_act(op.act) ? ptflops_rules::kActFactor[static_cast<int32_t>(op.act)] : 0;
      c.ptflops_macs = ar.mul(f, n_in, "act");
      break;
    }
    case OpKind::Pool: {
      c.ptflops_macs = ar.mul(ptflops_rules::kPoolFactor, n_in, "inputs");
      if (exec && op.pool == PoolKind::Avg) {
        const k::cmsis_nn_dims od = nhwc(ar, out, "output");
        c.scratch = ar.scratch(k::arm_avgpool_s8_get_buffer_size_dsp(od.w, od.c), "pool");
      }
      break;
    }
    case OpKind::GlobalPool: {
      c.ptflops_macs = ar.mul(ptflops_rules::kGlobalPoolFactor, n_in, "inputs");
      if (exec && op.pool == PoolKind::Avg) {
        c.scratch = ar.scratch(k::arm_avgpool_s8_get_buffer_size_dsp(1, ar.i32(in[0], "inputs")), "pool");
      }
      break;
    }
    case OpKind::Add:
    case OpKind::Mul: {
      c.ptflops_macs = ar.mul(op.kind == OpKind::Add ? ptflops_rules::kAddFactor : ptflops_rules::kMulFactor, n_out,
                              "inputs");
      if (op.inputs.size() == 1) {  // plus / times a parameter tensor
        const int64_t np = ar.numel(op.param_shape, "param_shape");
        c.params = np;
        c.flash = ar.add(np, 8, "param_shape");
      }
      break;
    }
    case OpKind::Concat:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Slice:
    case OpKind::Mean: break;
    case OpKind::Softmax: c.ptflops_macs = ar.mul(ptflops_rules::kSoftmaxFactor, n_in, "inputs"); break;
    case OpKind::RNN: {
      const bool lstm = op.cell == RnnCell::LSTM;
      const int64_t G = lstm ? 4 : 3;
      const int64_t T = in[0], I = op.in_channels, H = op.out_channels;
      const int64_t dirs = op.bidirectional ? 2 : 1;
      const int64_t gh = ar.mul(G, H, "out_channels");
      const int64_t w = ar.mul(gh, ar.add(I, H, "out_channels"), "out_channels");  // per direction
      const int64_t steps = ar.mul(T, dirs, "inputs");
      c.macs = ar.mul(steps, w, "out_channels");
      const int64_t b = op.bias ? ar.mul(2, gh, "bias") : 0;
      c.params = ar.mul(dirs, ar.add(w, b, "bias"), "bidirectional");
      const int64_t ew =
          ar.mul(lstm ? ptflops_rules::kLstmElementwise : ptflops_rules::kGruElementwise, H, "out_channels");
      c.ptflops_macs = ar.mul(steps, ar.add(ar.add(w, ew, "out_channels"), b, "bias"), "inputs");
      // weights + effective-bias vectors (8 LSTM / 6 GRU, int32 x H) + per-gate (multiplier, shift) x 2
      const int64_t nb = lstm ? 8 : 6;
      const int64_t per_dir =
          ar.add(ar.add(w, ar.mul(nb * 4, H, "out_channels"), "out_channels"), G * 2 * 8, "out_channels");
      c.flash = ar.mul(dirs, per_dir, "bidirectional");
      if (exec) {
        const int32_t h32 = ar.i32(H, "out_channels");
        c.scratch = ar.scratch(lstm ? k::arm_lstm_unidirectional_s8_get_buffer_size(h32, 1)
                                    : k::arm_gru_unidirectional_s8_get_buffer_size(h32, 1),
                               "out_channels");
      }
      break;
    }
    case OpKind::MatMul: {
      const int64_t K = in.back();
      c.macs = ar.mul(n_out, K, "inputs");
      const auto& b = g.tensors[static_cast<size_t>(op.inputs[1])].shape;
      c.ptflops_macs = ar.mul(n_in, b.back(), "inputs");
      break;
    }
    case OpKind::LayerNorm: {
      int64_t d = 1;  // elements of the normalized shape
      for (size_t i = static_cast<size_t>(op.axis); i < in.size(); ++i) d = ar.mul(d, in[i], "axis");
      c.params = op.bias ? ar.mul(2, d, "axis") : 0;
      c.ptflops_macs = ar.mul(ptflops_rules::kLayerNormFactor, n_in, "inputs");
      c.flash = op.bias ? ar.mul(5, d, "axis") : 0;  // gamma int8 + beta int32
      break;
    }
    case OpKind::Gather:
      c.flash = ar.mul(4, static_cast<int64_t>(op.indices.size()), "indices");  // int32 index table
      break;
    case OpKind::DFT: {
      const int64_t n = in.back();
      c.macs = ar.mul(n_out, n, "inputs");             // a constant (length x n) matrix per transform
      c.flash = ar.mul(op.length, n, "length");        // its int8 cos or sin table
      break;                                           // ptflops does not see torch.fft: 0
    }
  }
  if constexpr (Checked) {
    if (op.ptflops_form < 0 || op.ptflops_form > 2) {
      ar.fail("ptflops_form", "= " + std::to_string(op.ptflops_form) + " must be 0, 1 or 2");
    }
  }
  if (op.ptflops_form == 2) {
    c.ptflops_macs = 0;  // ptflops does not see this spelling at all
  } else if (op.ptflops_form == 1) {
    // a patched F.* functional: counted once (the module forms above count some kinds twice)
    switch (op.kind) {
      case OpKind::Activation:
        c.ptflops_macs = known_act(op.act) ? ar.mul(ptflops_rules::kActFunctional[static_cast<int32_t>(op.act)],
                                                    n_in, "act")
                                           : 0;
        break;
      case OpKind::Pool:
      case OpKind::GlobalPool:
      case OpKind::Softmax: c.ptflops_macs = n_in; break;
      case OpKind::Linear:  // F.linear: input x out_features, the bias once
        c.ptflops_macs = ar.add(ar.mul(n_in, op.out_channels, "out_channels"), op.bias ? op.out_channels : 0, "bias");
        break;
      default: break;
    }
  }
  if (op.extra_params != 0) {
    if constexpr (Checked) {
      if (op.extra_params < 0) ar.fail("extra_params", "= " + std::to_string(op.extra_params) + " must be >= 0");
    }
    c.params = ar.add(c.params, op.extra_params, "extra_params");
  }
}

bool fuses_act(const Op& op) {
  return op.act == ActKind::ReLU || op.act == ActKind::ReLU6 || op.act == ActKind::Hardtanh ||
         op.act == ActKind::Identity;
}

// The cost model. `enabled` (nullable) marks ops that the batch API turned into identities.
// Phase 1, structure only (op kinds, ids, ranks; never sizes): readers, folding/fusion/aliasing,
// buffer roots and live ranges. The batch API plans a template once and evaluates every row.
void plan(const Graph& g, const uint8_t* enabled, Workspace& ws) {
  const size_t nt = g.tensors.size();
  const size_t no = g.ops.size();
  ws.reset(nt, no);
  auto on = [&](size_t i) { return enabled == nullptr || enabled[i] != 0; };

  for (size_t i = 0; i < no; ++i) {
    const Op& op = g.ops[i];
    ws.producer[static_cast<size_t>(op.output)] = static_cast<int32_t>(i);
    const size_t n_read = on(i) ? op.inputs.size() : std::min<size_t>(1, op.inputs.size());
    for (size_t k = 0; k < n_read; ++k) {
      const auto t = static_cast<size_t>(op.inputs[k]);
      ws.readers[t] += 1;
      ws.last_read[t] = static_cast<int32_t>(i);
    }
  }
  for (int32_t t : g.outputs) ws.is_out[static_cast<size_t>(t)] = 1;

  // Lowering: folding, fusion, aliasing.
  for (size_t i = 0; i < no; ++i) {
    const Op& op = g.ops[i];
    const auto o = static_cast<size_t>(op.output);
    uint8_t low = kExec;
    if (!on(i) || op.kind == OpKind::Reshape) {
      low = kAlias;
    } else if (op.kind == OpKind::BatchNorm || (op.kind == OpKind::Activation && fuses_act(op))) {
      const auto t = static_cast<size_t>(op.inputs[0]);
      const int32_t p = ws.producer[t];
      if (p >= 0 && ws.readers[t] == 1 && !ws.is_out[t]) {
        const Op& prod = g.ops[static_cast<size_t>(p)];
        const uint8_t plow = ws.low[static_cast<size_t>(p)];
        if (op.kind == OpKind::BatchNorm) {
          const bool lin1d = prod.kind == OpKind::Linear &&
                             g.tensors[static_cast<size_t>(prod.output)].shape.size() == 1;
          if (plow == kExec && (prod.kind == OpKind::Conv || lin1d)) low = kFused;
        } else {
          const bool folded_bn = prod.kind == OpKind::BatchNorm && plow == kFused;
          const bool clampable = plow == kExec && (prod.kind == OpKind::Conv || prod.kind == OpKind::Linear ||
                                                   prod.kind == OpKind::Add || prod.kind == OpKind::Pool ||
                                                   prod.kind == OpKind::GlobalPool);
          if (folded_bn || clampable) low = kFused;
        }
      }
    }
    ws.low[i] = low;
    ws.buf[o] = low == kExec ? static_cast<int32_t>(o) : ws.buf[static_cast<size_t>(op.inputs[0])];
  }

  // Buffer live ranges (an alias group is one buffer).
  const auto last = static_cast<int32_t>(no) - 1;
  for (size_t t = 0; t < nt; ++t) {
    const int32_t p = ws.producer[t];
    if (p < 0) continue;
    const auto b = static_cast<size_t>(ws.buf[t]);
    if (b == t) {
      ws.start[b] = g.ops[static_cast<size_t>(p)].kind == OpKind::Input ? 0 : p;
    }
    int32_t e = std::max(p, ws.last_read[t]);
    if (ws.is_out[t]) e = last;
    ws.end[b] = std::max(ws.end[b], e);
  }
}

// Phase 2, sizes: buffer bytes, live bytes per op, per-op costs and totals.
template <bool Checked>
CostTotals evaluate(const Graph& g, const uint8_t* enabled, Workspace& ws, std::vector<OpCost>* rows) {
  const size_t nt = g.tensors.size();
  const size_t no = g.ops.size();
  Arith<Checked> ar{g};
  auto on = [&](size_t i) { return enabled == nullptr || enabled[i] != 0; };

  std::fill(ws.bytes.begin(), ws.bytes.end(), int64_t{0});
  std::fill(ws.live.begin(), ws.live.end(), int64_t{0});
  for (size_t t = 0; t < nt; ++t) {
    if (ws.producer[t] < 0) continue;
    const auto b = static_cast<size_t>(ws.buf[t]);
    ws.bytes[b] = std::max(ws.bytes[b], ar.numel(g.tensors[t].shape, "output"));
  }
  ar.op = -1;
  for (size_t b = 0; b < nt; ++b) {
    if (ws.start[b] < 0) continue;
    ws.live[static_cast<size_t>(ws.start[b])] = ar.add(ws.live[static_cast<size_t>(ws.start[b])], ws.bytes[b], "peak_sram");
    ws.live[static_cast<size_t>(ws.end[b]) + 1] -= ws.bytes[b];
  }

  CostTotals tot;
  int64_t live = 0;
  if (rows) rows->assign(no, OpCost{});
  for (size_t i = 0; i < no; ++i) {
    ar.op = -1;
    live = ar.add(live, ws.live[i], "peak_sram");
    const Op& op = g.ops[i];
    ar.op = static_cast<int64_t>(i);
    OpCost c;
    if (on(i)) {
      op_cost(ar, g, op, ws.low[i], c);
    } else {
      c.out_elems = ar.numel(g.tensors[static_cast<size_t>(op.output)].shape, "output");
    }
    c.fused = ws.low[i] == kFused;
    c.alias = ws.low[i] == kAlias;
    if (ws.low[i] == kExec) {
      c.mem = ar.add(live, c.scratch, "output");
      if (c.mem > tot.peak_sram || tot.peak_op < 0) {
        tot.peak_sram = c.mem;
        tot.peak_op = static_cast<int32_t>(i);
      }
    } else {
      c.scratch = 0;
    }
    ar.op = -1;
    tot.macs = ar.add(tot.macs, c.macs, "macs");
    tot.ptflops_macs = ar.add(tot.ptflops_macs, c.ptflops_macs, "ptflops_macs");
    tot.params = ar.add(tot.params, c.params, "params");
    tot.flash = ar.add(tot.flash, c.flash, "flash");
    if (rows) (*rows)[i] = c;
  }
  return tot;
}

template <bool Checked>
CostTotals compute(const Graph& g, const uint8_t* enabled, Workspace& ws, std::vector<OpCost>* rows) {
  plan(g, enabled, ws);
  return evaluate<Checked>(g, enabled, ws, rows);
}

bool applies(Field f, OpKind k) {
  switch (f) {
    case Field::OutChannels: return k == OpKind::Conv || k == OpKind::Linear || k == OpKind::RNN;
    case Field::KernelW:
    case Field::KernelH:
    case Field::StrideW:
    case Field::StrideH:
    case Field::PadW: return k == OpKind::Conv || k == OpKind::Pool;
    case Field::Groups: return k == OpKind::Conv;
    case Field::Enabled: return k != OpKind::Input;
    case Field::InputDim: return k == OpKind::Input;
  }
  return false;
}

const char* field_name(Field f) {
  switch (f) {
    case Field::OutChannels: return "OutChannels";
    case Field::KernelW: return "KernelW";
    case Field::KernelH: return "KernelH";
    case Field::StrideW: return "StrideW";
    case Field::StrideH: return "StrideH";
    case Field::PadW: return "PadW";
    case Field::Groups: return "Groups";
    case Field::Enabled: return "Enabled";
    case Field::InputDim: return "InputDim";
  }
  return "unknown";
}

}  // namespace

void validate_cost(const Graph& g) {
  validate(g);
  Workspace ws;
  compute<true>(g, nullptr, ws, nullptr);
}

CostReport cost(const Graph& g) {
  validate(g);
  CostReport r;
  Workspace ws;
  // The checked arithmetic of this pass is validate_cost's second half: one pass, the same errors.
  r.total = compute<true>(g, nullptr, ws, &r.ops);
  return r;
}

CostTotals cost_totals_unchecked(const Graph& g) {
  thread_local Workspace ws;
  return compute<false>(g, nullptr, ws, nullptr);
}

void cost_batch(const Graph& tmpl, const std::vector<Binding>& bindings, const int64_t* values, int64_t n_rows,
                int64_t n_cols, int64_t* out) {
  if (n_rows < 0 || n_cols < 0) throw GraphError("cost_batch: negative values matrix size");
  if (n_rows > 0 && (values == nullptr || out == nullptr)) throw GraphError("cost_batch: null values or output");
  const auto no = static_cast<int64_t>(tmpl.ops.size());
  for (size_t k = 0; k < bindings.size(); ++k) {
    const Binding& b = bindings[k];
    const std::string at = "binding " + std::to_string(k) + ": ";
    const auto fv = static_cast<int32_t>(b.field);
    if (fv < 0 || fv > static_cast<int32_t>(Field::InputDim)) {
      throw GraphError(at + "field " + std::to_string(fv) + " is not a known Field");
    }
    if (b.op < 0 || b.op >= no) throw GraphError(at + "op " + std::to_string(b.op) + " is not an op index");
    if (b.column < 0 || b.column >= n_cols) {
      throw GraphError(at + "column " + std::to_string(b.column) + " is outside the " + std::to_string(n_cols) +
                       " value columns");
    }
    const Op& op = tmpl.ops[static_cast<size_t>(b.op)];
    if (!applies(b.field, op.kind)) {
      throw GraphError(at + "field " + field_name(b.field) + " does not apply to op " + std::to_string(b.op) + " '" +
                       op.name + "' (" + op_kind_name(op.kind) + ")");
    }
    if (b.field == Field::InputDim) {
      const int32_t t = op.output;
      if (t < 0 || static_cast<size_t>(t) >= tmpl.tensors.size() || b.dim < 0 ||
          static_cast<size_t>(b.dim) >= tmpl.tensors[static_cast<size_t>(t)].shape.size()) {
        throw GraphError(at + "dim " + std::to_string(b.dim) + " is not a dimension of op " + std::to_string(b.op) +
                         " '" + op.name + "' (input)");
      }
    }
  }

  validate_cost(tmpl);  // once: rows change integer fields only, never the structure
  Graph work = tmpl;
  // rederive_shapes rewrites every op output from its inputs; only graph inputs and the recorded
  // reshape targets (which it adapts) must be reset to the template's per row.
  std::vector<size_t> reset;
  for (const Op& op : tmpl.ops) {
    // (an out-of-range id is left to propagate_shapes, which reports it naming the op)
    if ((op.kind == OpKind::Input || op.kind == OpKind::Reshape) && op.output >= 0 &&
        static_cast<size_t>(op.output) < tmpl.tensors.size()) {
      reset.push_back(static_cast<size_t>(op.output));
    }
  }
  std::vector<uint8_t> enabled(tmpl.ops.size(), 1);
  Workspace ws;
  ShapeScratch scratch;
  const bool fixed_structure =
      std::none_of(bindings.begin(), bindings.end(), [](const Binding& b) { return b.field == Field::Enabled; });
  if (fixed_structure) plan(tmpl, nullptr, ws);

  for (int64_t r = 0; r < n_rows; ++r) {
    try {
      for (size_t t : reset) work.tensors[t].shape = tmpl.tensors[t].shape;
      std::fill(enabled.begin(), enabled.end(), uint8_t{1});
      const int64_t* row = values + r * n_cols;
      for (const Binding& b : bindings) {
        const int64_t v = row[b.column];
        Op& op = work.ops[static_cast<size_t>(b.op)];
        switch (b.field) {
          case Field::OutChannels: op.out_channels = v; break;
          case Field::KernelW: op.kernel[1] = v; break;
          case Field::KernelH: op.kernel[0] = v; break;
          case Field::StrideW: op.stride[1] = v; break;
          case Field::StrideH: op.stride[0] = v; break;
          case Field::PadW: op.pad[2] = op.pad[3] = v; break;
          case Field::Groups: op.groups = v; break;
          case Field::Enabled: enabled[static_cast<size_t>(b.op)] = v != 0; break;
          case Field::InputDim: work.tensors[static_cast<size_t>(op.output)].shape[static_cast<size_t>(b.dim)] = v; break;
        }
      }
      rederive_shapes(work, scratch);
      for (size_t i = 0; i < work.ops.size(); ++i) {
        if (enabled[i]) continue;
        const Op& op = work.ops[i];
        const auto& so = work.tensors[static_cast<size_t>(op.output)].shape;
        const auto& si = work.tensors[static_cast<size_t>(op.inputs[0])].shape;
        if (so != si) {
          throw GraphError("op " + std::to_string(i) + " '" + op.name + "' (" + op_kind_name(op.kind) +
                           "): field 'Enabled' = 0 needs the output shape to equal the input shape, but the op maps " +
                           std::to_string(si.size()) + "-d " + [&] {
                             std::string s = "(";
                             for (size_t d = 0; d < si.size(); ++d) s += (d ? ", " : "") + std::to_string(si[d]);
                             s += ") to (";
                             for (size_t d = 0; d < so.size(); ++d) s += (d ? ", " : "") + std::to_string(so[d]);
                             return s + ")";
                           }());
        }
      }
      const CostTotals t = fixed_structure ? evaluate<true>(work, nullptr, ws, nullptr)
                                           : compute<true>(work, enabled.data(), ws, nullptr);
      int64_t* o = out + r * 4;
      o[0] = t.macs;
      o[1] = t.params;
      o[2] = t.peak_sram;
      o[3] = t.flash;
    } catch (const GraphError& e) {
      throw GraphError("row " + std::to_string(r) + ": " + e.what());
    }
  }
}

}  // namespace harcore
