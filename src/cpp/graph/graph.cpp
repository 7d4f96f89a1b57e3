// Shape inference and validation of the op graph (see graph.hpp for the data model).
//
// Every rejection is a GraphError whose message has the form
//   op <index> '<name>' (<kind>): field '<field>' <what is wrong>
// so that a user can find the op in a traced model and the field to fix.
// All size arithmetic is done with overflow-checked int64 operations (__builtin_*_overflow).
#include "graph/graph.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>

namespace harcore {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::Input: return "input";
    case OpKind::Conv: return "conv";
    case OpKind::Linear: return "linear";
    case OpKind::BatchNorm: return "batchnorm";
    case OpKind::Activation: return "activation";
    case OpKind::Pool: return "pool";
    case OpKind::GlobalPool: return "globalpool";
    case OpKind::Add: return "add";
    case OpKind::Mul: return "mul";
    case OpKind::Concat: return "concat";
    case OpKind::Reshape: return "reshape";
    case OpKind::Transpose: return "transpose";
    case OpKind::Slice: return "slice";
    case OpKind::RNN: return "rnn";
    case OpKind::MatMul: return "matmul";
    case OpKind::Softmax: return "softmax";
    case OpKind::Mean: return "mean";
    case OpKind::LayerNorm: return "layernorm";
    case OpKind::Gather: return "gather";
    case OpKind::DFT: return "dft";
  }
  return "unknown";
}

const char* act_kind_name(ActKind k) {
  switch (k) {
    case ActKind::ReLU: return "relu";
    case ActKind::ReLU6: return "relu6";
    case ActKind::Sigmoid: return "sigmoid";
    case ActKind::Tanh: return "tanh";
    case ActKind::LeakyReLU: return "leaky_relu";
    case ActKind::ELU: return "elu";
    case ActKind::GELU: return "gelu";
    case ActKind::Hardtanh: return "hardtanh";
    case ActKind::SiLU: return "silu";
    case ActKind::Identity: return "identity";
  }
  return "unknown";
}

namespace {

bool known_kind(OpKind k) {
  const auto v = static_cast<int32_t>(k);
  return v >= static_cast<int32_t>(OpKind::Input) && v <= static_cast<int32_t>(OpKind::DFT);
}
bool known_act(ActKind k) {
  const auto v = static_cast<int32_t>(k);
  return v >= 0 && v <= static_cast<int32_t>(ActKind::Identity);
}
bool known_pool(PoolKind k) {
  const auto v = static_cast<int32_t>(k);
  return v == 0 || v == 1;
}
bool known_cell(RnnCell k) {
  const auto v = static_cast<int32_t>(k);
  return v == 0 || v == 1;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

// The op under inspection, for error messages.
struct Ctx {
  const Graph& g;
  const Op& op;
  int64_t index;  // -1 when the op is not an element of g.ops

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    std::string m = "op ";
    m += index >= 0 ? std::to_string(index) : std::string("?");
    m += " '" + op.name + "' (";
    if (known_kind(op.kind)) {
      m += op_kind_name(op.kind);
    } else {
      m += "kind " + std::to_string(static_cast<int32_t>(op.kind));
    }
    m += "): field '" + field + "' " + what;
    throw GraphError(m);
  }
  [[noreturn]] void fail_value(const std::string& field, int64_t v, const std::string& what) const {
    fail(field, "= " + std::to_string(v) + " " + what);
  }
  void at_least(const char* field, int64_t v, int64_t lo) const {
    if (v < lo) fail_value(field, v, "must be >= " + std::to_string(lo));
  }
  int64_t mul(const char* field, int64_t a, int64_t b) const {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
      fail(field, "gives a size product " + std::to_string(a) + " * " + std::to_string(b) +
                      " that overflows int64");
    }
    return r;
  }
  int64_t add(const char* field, int64_t a, int64_t b) const {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
      fail(field, "gives a size sum " + std::to_string(a) + " + " + std::to_string(b) +
                      " that overflows int64");
    }
    return r;
  }
  int64_t numel(const char* field, const std::vector<int64_t>& s) const {
    int64_t n = 1;
    for (int64_t d : s) n = mul(field, n, d);
    return n;
  }
};

// numpy broadcasting of two activations (right-aligned; a dim of 1 stretches). Attention
// weights times features, e.g. (T, 1) * (T, H), are the HAR models' use.
std::vector<int64_t> broadcast(const Ctx& c, const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                               const char* what) {
  const size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) {
      c.fail("inputs", "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast (" + what + ")");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t op_index(const Graph& g, const Op& op) {
  if (!g.ops.empty() && &op >= g.ops.data() && &op < g.ops.data() + g.ops.size()) {
    return static_cast<int64_t>(&op - g.ops.data());
  }
  return -1;
}

// Number of activation inputs each kind takes: [lo, hi].
std::pair<size_t, size_t> input_arity(OpKind k) {
  switch (k) {
    case OpKind::Input: return {0, 0};
    case OpKind::MatMul: return {2, 2};
    case OpKind::Add:
    case OpKind::Mul: return {1, 2};
    case OpKind::Concat: return {1, std::numeric_limits<size_t>::max()};
    default: return {1, 1};
  }
}

const std::vector<int64_t>& input_shape(const Ctx& c, size_t k) {
  return c.g.tensors[static_cast<size_t>(c.op.inputs[k])].shape;
}

void check_input_ids(const Ctx& c) {
  const auto ar = input_arity(c.op.kind);
  const size_t n = c.op.inputs.size();
  if (n < ar.first || n > ar.second) {
    std::string want = ar.first == ar.second ? std::to_string(ar.first)
                       : ar.second == std::numeric_limits<size_t>::max()
                           ? "at least " + std::to_string(ar.first)
                           : std::to_string(ar.first) + " or " + std::to_string(ar.second);
    c.fail("inputs", "has " + std::to_string(n) + " tensor ids, this kind takes " + want);
  }
  const auto nt = static_cast<int64_t>(c.g.tensors.size());
  for (size_t k = 0; k < n; ++k) {
    const int32_t id = c.op.inputs[k];
    if (id < 0 || id >= nt) {
      c.fail("inputs", "[" + std::to_string(k) + "] = " + std::to_string(id) +
                           " is not a tensor id (graph has " + std::to_string(nt) + " tensors)");
    }
    const auto& s = c.g.tensors[static_cast<size_t>(id)].shape;
    for (int64_t d : s) {
      if (d < 1) {
        c.fail("inputs", "[" + std::to_string(k) + "]: tensor " + std::to_string(id) + " '" +
                             c.g.tensors[static_cast<size_t>(id)].name + "' has shape " + shape_str(s) +
                             " with a dimension < 1");
      }
    }
    c.numel("inputs", s);
  }
}

int64_t axis_in(const Ctx& c, size_t rank) {
  if (c.op.axis < 0 || static_cast<size_t>(c.op.axis) >= rank) {
    c.fail_value("axis", c.op.axis, "is out of range for an input of rank " + std::to_string(rank));
  }
  return c.op.axis;
}

// torch's conv output length (padding may be asymmetric: lo + hi).
int64_t conv_len(const Ctx& c, const char* field, int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo,
                 int64_t hi) {
  const int64_t eff = c.add(field, c.mul(field, d, k - 1), 1);
  const int64_t padded = c.add(field, c.add(field, in, lo), hi);
  if (padded < eff) {
    c.fail(field, "gives an effective kernel of " + std::to_string(eff) + " larger than the padded input (" +
                      std::to_string(padded) + ")");
  }
  return (padded - eff) / s + 1;
}

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}

// torch's pooling_output_shape, with the left pad `lo` used for the ceil-mode correction.
int64_t pool_len(const Ctx& c, const char* field, int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo,
                 int64_t hi, bool ceil_mode) {
  int64_t num = c.add(field, c.add(field, in, lo), hi);
  num = c.add(field, num, -c.add(field, c.mul(field, d, k - 1), 1));
  if (ceil_mode) num = c.add(field, num, s - 1);
  int64_t out = floor_div(num, s) + 1;
  if (ceil_mode && (out - 1) * s >= in + lo) --out;  // last window must start inside input or left pad
  if (out < 1) {
    c.fail(field, "gives an output length of " + std::to_string(out) + " for an input length of " +
                      std::to_string(in));
  }
  return out;
}

void check_geometry(const Ctx& c, size_t rank, bool is_conv) {
  const Op& op = c.op;
  for (int i = 0; i < 2; ++i) {
    c.at_least("kernel", op.kernel[static_cast<size_t>(i)], 1);
    c.at_least("stride", op.stride[static_cast<size_t>(i)], 1);
    c.at_least("dilation", op.dilation[static_cast<size_t>(i)], 1);
  }
  for (int i = 0; i < 4; ++i) c.at_least("pad", op.pad[static_cast<size_t>(i)], 0);
  if (rank == 2) {
    const char* what = is_conv ? "must be 1 for a 1-D conv (input (C, T))" : "must be 1 for a 1-D pool (input (C, T))";
    if (op.kernel[0] != 1) c.fail_value("kernel", op.kernel[0], std::string("(h) ") + what);
    if (op.stride[0] != 1) c.fail_value("stride", op.stride[0], std::string("(h) ") + what);
    if (op.dilation[0] != 1) c.fail_value("dilation", op.dilation[0], std::string("(h) ") + what);
    if (op.pad[0] != 0) c.fail_value("pad", op.pad[0], "(top) must be 0 for a 1-D op (input (C, T))");
    if (op.pad[1] != 0) c.fail_value("pad", op.pad[1], "(bottom) must be 0 for a 1-D op (input (C, T))");
  }
}

void infer_impl(const Ctx& c, std::vector<int64_t>& res, bool ids_checked = false) {
  const Op& op = c.op;
  if (!known_kind(op.kind)) c.fail_value("kind", static_cast<int32_t>(op.kind), "is not a known op kind");
  if (!ids_checked) check_input_ids(c);
  const auto nt = static_cast<int64_t>(c.g.tensors.size());

  switch (op.kind) {
    case OpKind::Input: {
      if (op.output < 0 || op.output >= nt) c.fail_value("output", op.output, "is not a tensor id");
      const auto& s = c.g.tensors[static_cast<size_t>(op.output)].shape;
      for (int64_t d : s) {
        if (d < 1) c.fail("output", "shape " + shape_str(s) + " has a dimension < 1");
      }
      c.numel("output", s);
      res = s;
      return;
    }
    case OpKind::Conv: {
      const auto& s = input_shape(c, 0);
      if (s.size() != 2 && s.size() != 3) {
        c.fail("inputs", "tensor shape " + shape_str(s) + " must be (C, T) or (C, H, W) for a conv");
      }
      c.at_least("in_channels", op.in_channels, 1);
      c.at_least("out_channels", op.out_channels, 1);
      c.at_least("groups", op.groups, 1);
      if (op.in_channels != s[0]) {
        c.fail_value("in_channels", op.in_channels,
                     "does not match the input's " + std::to_string(s[0]) + " channels " + shape_str(s));
      }
      if (op.in_channels % op.groups != 0) {
        c.fail_value("groups", op.groups, "does not divide in_channels = " + std::to_string(op.in_channels));
      }
      if (op.out_channels % op.groups != 0) {
        c.fail_value("groups", op.groups, "does not divide out_channels = " + std::to_string(op.out_channels));
      }
      check_geometry(c, s.size(), true);
      const size_t w = s.size() - 1;
      const int64_t ow = conv_len(c, "kernel", s[w], op.kernel[1], op.stride[1], op.dilation[1], op.pad[2], op.pad[3]);
      res.assign({op.out_channels, ow});
      auto& out = res;
      if (s.size() == 3) {
        out.insert(out.begin() + 1,
                   conv_len(c, "kernel", s[1], op.kernel[0], op.stride[0], op.dilation[0], op.pad[0], op.pad[1]));
      }
      c.numel("out_channels", out);
      return;
    }
    case OpKind::Linear: {
      const auto& s = input_shape(c, 0);
      if (s.empty()) c.fail("inputs", "tensor is a scalar; a linear needs at least one dimension");
      c.at_least("in_channels", op.in_channels, 1);
      c.at_least("out_channels", op.out_channels, 1);
      if (op.in_channels != s.back()) {
        c.fail_value("in_channels", op.in_channels,
                     "does not match the input's last dimension " + std::to_string(s.back()) + " " + shape_str(s));
      }
      res = s;
      auto& out = res;
      out.back() = op.out_channels;
      c.numel("out_channels", out);
      return;
    }
    case OpKind::BatchNorm: {
      const auto& s = input_shape(c, 0);
      if (s.empty()) c.fail("inputs", "tensor is a scalar; batchnorm needs a channel dimension");
      c.at_least("in_channels", op.in_channels, 1);
      if (op.in_channels != s[0]) {
        c.fail_value("in_channels", op.in_channels,
                     "does not match the input's " + std::to_string(s[0]) + " channels " + shape_str(s));
      }
      res = s;
      return;
    }
    case OpKind::Activation: {
      if (!known_act(op.act)) c.fail_value("act", static_cast<int32_t>(op.act), "is not a known activation");
      res = input_shape(c, 0);
      return;
    }
    case OpKind::Pool: {
      const auto& s = input_shape(c, 0);
      if (!known_pool(op.pool)) c.fail_value("pool", static_cast<int32_t>(op.pool), "is not a known pool kind");
      if (s.size() != 2 && s.size() != 3) {
        c.fail("inputs", "tensor shape " + shape_str(s) + " must be (C, T) or (C, H, W) for a pool");
      }
      check_geometry(c, s.size(), false);
      if (op.pool == PoolKind::Avg) {
        if (op.dilation[0] != 1 || op.dilation[1] != 1) {
          c.fail_value("dilation", op.dilation[0] != 1 ? op.dilation[0] : op.dilation[1],
                       "must be 1 for an average pool");
        }
      }
      // torch: "pad should be at most half of kernel size"
      for (size_t i = 0; i < 4; ++i) {
        const int64_t k = op.kernel[i < 2 ? 0 : 1];
        if (op.pad[i] > k / 2) {
          c.fail_value("pad", op.pad[i], "must be at most half the kernel size " + std::to_string(k));
        }
      }
      const size_t w = s.size() - 1;
      const int64_t ow = pool_len(c, "kernel", s[w], op.kernel[1], op.stride[1], op.dilation[1], op.pad[2], op.pad[3],
                                  op.ceil_mode);
      if (s.size() == 2) { res = {s[0], ow}; return; }
      const int64_t oh = pool_len(c, "kernel", s[1], op.kernel[0], op.stride[0], op.dilation[0], op.pad[0], op.pad[1],
                                  op.ceil_mode);
      res = {s[0], oh, ow};
      return;
    }
    case OpKind::GlobalPool: {
      const auto& s = input_shape(c, 0);
      if (!known_pool(op.pool)) c.fail_value("pool", static_cast<int32_t>(op.pool), "is not a known pool kind");
      if (s.size() < 2) c.fail("inputs", "tensor shape " + shape_str(s) + " must have rank >= 2 for a global pool");
      if (!op.keep_dims) { res = {s[0]}; return; }
      res.assign(s.size(), 1);
      auto& out = res;
      out[0] = s[0];
      return;
    }
    case OpKind::Add:
    case OpKind::Mul: {
      const bool add = op.kind == OpKind::Add;
      const auto& a = input_shape(c, 0);
      if (op.inputs.size() == 2) {
        if (!op.param_shape.empty()) {
          c.fail("param_shape", "= " + shape_str(op.param_shape) + " must be empty for " +
                                    (add ? "an add" : "a mul") + " of two activations");
        }
        res = broadcast(c, a, input_shape(c, 1), add ? "add" : "mul");
        return;
      }
      const auto& p = op.param_shape;
      if (p.empty()) {
        c.fail("param_shape", add ? "is empty: a one-input add adds a parameter of this shape"
                                  : "is empty: a one-input mul multiplies by a parameter of this shape");
      }
      if (p.size() > a.size()) {
        c.fail("param_shape", "= " + shape_str(p) + " has more dimensions than the input " + shape_str(a));
      }
      const size_t off = a.size() - p.size();
      for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] < 1) c.fail("param_shape", "= " + shape_str(p) + " has a dimension < 1");
        if (p[i] != 1 && p[i] != a[off + i]) {
          c.fail("param_shape", "= " + shape_str(p) + " does not broadcast against the input " + shape_str(a));
        }
      }
      c.numel("param_shape", p);
      res = a;
      return;
    }
    case OpKind::Concat: {
      const auto& a = input_shape(c, 0);
      const int64_t ax = axis_in(c, a.size());
      res = a;
      auto& out = res;
      for (size_t k = 1; k < op.inputs.size(); ++k) {
        const auto& b = input_shape(c, k);
        bool ok = b.size() == a.size();
        for (size_t i = 0; ok && i < a.size(); ++i) {
          if (static_cast<int64_t>(i) != ax && a[i] != b[i]) ok = false;
        }
        if (!ok) {
          c.fail("inputs", "[" + std::to_string(k) + "] shape " + shape_str(b) + " does not match " + shape_str(a) +
                               " outside axis " + std::to_string(ax));
        }
        out[static_cast<size_t>(ax)] = c.add("inputs", out[static_cast<size_t>(ax)], b[static_cast<size_t>(ax)]);
      }
      return;
    }
    case OpKind::Reshape: {
      if (op.output < 0 || op.output >= nt) c.fail_value("output", op.output, "is not a tensor id");
      const auto& r = c.g.tensors[static_cast<size_t>(op.output)].shape;
      for (int64_t d : r) {
        if (d < 1) c.fail("output", "recorded shape " + shape_str(r) + " has a dimension < 1");
      }
      const auto& s = input_shape(c, 0);
      const int64_t nr = c.numel("output", r);
      const int64_t ns = c.numel("inputs", s);
      if (nr != ns) {
        c.fail("output", "recorded shape " + shape_str(r) + " has " + std::to_string(nr) +
                             " elements, the input " + shape_str(s) + " has " + std::to_string(ns));
      }
      res = r;
      return;
    }
    case OpKind::Transpose: {
      const auto& s = input_shape(c, 0);
      if (op.perm.size() != s.size()) {
        c.fail("perm", "has " + std::to_string(op.perm.size()) + " entries for an input of rank " +
                           std::to_string(s.size()));
      }
      std::vector<char> seen(s.size(), 0);
      res.assign(s.size(), 0);
      auto& out = res;
      for (size_t i = 0; i < op.perm.size(); ++i) {
        const int64_t p = op.perm[i];
        if (p < 0 || static_cast<size_t>(p) >= s.size() || seen[static_cast<size_t>(p)]) {
          c.fail("perm", "[" + std::to_string(i) + "] = " + std::to_string(p) + " does not make a permutation of 0.." +
                             std::to_string(static_cast<int64_t>(s.size()) - 1));
        }
        seen[static_cast<size_t>(p)] = 1;
        out[i] = s[static_cast<size_t>(p)];
      }
      return;
    }
    case OpKind::Slice: {
      const auto& s = input_shape(c, 0);
      const auto ax = static_cast<size_t>(axis_in(c, s.size()));
      c.at_least("start", op.start, 0);
      c.at_least("length", op.length, 1);
      if (c.add("length", op.start, op.length) > s[ax]) {
        c.fail_value("length", op.length, "with start = " + std::to_string(op.start) + " runs past dimension " +
                                              std::to_string(ax) + " of size " + std::to_string(s[ax]));
      }
      if (op.squeeze && op.length != 1) c.fail_value("length", op.length, "must be 1 when squeeze is set");
      res = s;
      auto& out = res;
      if (op.squeeze) {
        out.erase(out.begin() + static_cast<std::ptrdiff_t>(ax));
      } else {
        out[ax] = op.length;
      }
      return;
    }
    case OpKind::RNN: {
      const auto& s = input_shape(c, 0);
      if (!known_cell(op.cell)) c.fail_value("cell", static_cast<int32_t>(op.cell), "is not a known RNN cell");
      if (s.size() != 2) c.fail("inputs", "tensor shape " + shape_str(s) + " must be (T, I) for an RNN");
      c.at_least("in_channels", op.in_channels, 1);
      c.at_least("out_channels", op.out_channels, 1);
      if (op.in_channels != s[1]) {
        c.fail_value("in_channels", op.in_channels,
                     "does not match the input's feature size " + std::to_string(s[1]) + " " + shape_str(s));
      }
      res = {s[0], c.mul("out_channels", op.out_channels, op.bidirectional ? 2 : 1)};
      return;
    }
    case OpKind::MatMul: {
      const auto& a = input_shape(c, 0);
      const auto& b = input_shape(c, 1);
      if (a.size() < 2 || b.size() != a.size()) {
        c.fail("inputs", "shapes " + shape_str(a) + " @ " + shape_str(b) +
                             " must both have the same rank >= 2 (batched matmul)");
      }
      const size_t r = a.size();
      for (size_t i = 0; i + 2 < r; ++i) {
        if (a[i] != b[i]) c.fail("inputs", "batch dimensions of " + shape_str(a) + " @ " + shape_str(b) + " differ");
      }
      if (a[r - 1] != b[r - 2]) {
        c.fail("inputs", "inner dimensions of " + shape_str(a) + " @ " + shape_str(b) + " differ");
      }
      res = a;
      auto& out = res;
      out[r - 1] = b[r - 1];
      return;
    }
    case OpKind::Softmax: {
      const auto& s = input_shape(c, 0);
      axis_in(c, s.size());
      res = s;
      return;
    }
    case OpKind::Mean: {
      const auto& s = input_shape(c, 0);
      const auto ax = static_cast<size_t>(axis_in(c, s.size()));
      res = s;
      auto& out = res;
      if (op.keep_dims) {
        out[ax] = 1;
      } else {
        out.erase(out.begin() + static_cast<std::ptrdiff_t>(ax));
      }
      return;
    }
    case OpKind::LayerNorm: {
      const auto& s = input_shape(c, 0);
      if (s.empty()) c.fail("inputs", "tensor is a scalar; layernorm needs at least one dimension");
      axis_in(c, s.size());
      res = s;
      return;
    }
    case OpKind::Gather: {
      const auto& s = input_shape(c, 0);
      const auto ax = static_cast<size_t>(axis_in(c, s.size()));
      for (int64_t d : op.index_shape) {
        if (d < 1) c.fail("index_shape", "= " + shape_str(op.index_shape) + " has a dimension < 1");
      }
      const int64_t ni = c.numel("index_shape", op.index_shape);
      if (static_cast<int64_t>(op.indices.size()) != ni) {
        c.fail("indices", "has " + std::to_string(op.indices.size()) + " entries, index_shape " +
                              shape_str(op.index_shape) + " holds " + std::to_string(ni));
      }
      for (size_t k = 0; k < op.indices.size(); ++k) {
        const int64_t v = op.indices[k];
        if (v < 0 || v >= s[ax]) {
          c.fail("indices", "[" + std::to_string(k) + "] = " + std::to_string(v) + " is outside dimension " +
                                std::to_string(ax) + " of size " + std::to_string(s[ax]) + " " + shape_str(s));
        }
      }
      res.assign(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(ax));
      res.insert(res.end(), op.index_shape.begin(), op.index_shape.end());
      res.insert(res.end(), s.begin() + static_cast<std::ptrdiff_t>(ax) + 1, s.end());
      return;
    }
    case OpKind::DFT: {
      const auto& s = input_shape(c, 0);
      if (s.empty()) c.fail("inputs", "tensor is a scalar; a DFT runs along the last dimension");
      c.at_least("length", op.length, 1);
      if (op.length > s.back()) {
        c.fail_value("length", op.length, "bins exceed the transform length " + std::to_string(s.back()) +
                                              " (the input's last dimension " + shape_str(s) + ")");
      }
      res = s;
      res.back() = op.length;
      return;
    }
  }
  c.fail_value("kind", static_cast<int32_t>(op.kind), "is not a known op kind");
}

// Reshape during propagation: the recorded shape was made for the template's sizes. Keep it when the
// element count still matches; otherwise re-derive it the way a torch view would for the common cases:
// a flatten (one non-unit dimension) takes the whole element count, and a squeeze/unsqueeze (same
// number of non-unit dimensions as the input) takes the input's non-unit dimensions in order.
std::vector<int64_t> adapt_reshape(const Ctx& c, const std::vector<int64_t>& rec, const std::vector<int64_t>& in) {
  int64_t ni = c.numel("inputs", in);
  int64_t nr = 1;
  for (int64_t d : rec) {
    if (d < 1) return rec;  // infer_impl reports it
    if (__builtin_mul_overflow(nr, d, &nr)) return rec;
  }
  if (nr == ni) return rec;
  std::vector<size_t> rec_nu;
  std::vector<int64_t> in_nu;
  for (size_t i = 0; i < rec.size(); ++i) {
    if (rec[i] != 1) rec_nu.push_back(i);
  }
  for (int64_t d : in) {
    if (d != 1) in_nu.push_back(d);
  }
  auto out = rec;
  if (rec_nu.size() == 1) {
    out[rec_nu[0]] = ni;
  } else if (rec_nu.size() == in_nu.size() && !rec_nu.empty()) {
    for (size_t k = 0; k < rec_nu.size(); ++k) out[rec_nu[k]] = in_nu[k];
  }
  return out;  // if neither rule applied the count still differs and infer_impl reports it
}

// Propagation: an op's in_channels follow its input; a recorded reshape target adapts to it.
void derive_from_inputs(const Ctx& c, Graph& g, Op& op, size_t out_id) {
  if (op.inputs.empty()) return;
  const auto& s = input_shape(c, 0);
  switch (op.kind) {
    case OpKind::Conv:
    case OpKind::BatchNorm:
      if (!s.empty()) op.in_channels = s[0];
      break;
    case OpKind::Linear:
      if (!s.empty()) op.in_channels = s.back();
      break;
    case OpKind::RNN:
      if (s.size() == 2) op.in_channels = s[1];
      break;
    case OpKind::Reshape: g.tensors[out_id].shape = adapt_reshape(c, g.tensors[out_id].shape, s); break;
    default: break;
  }
}

// kPropagate = false: validate (compare recorded shapes with the inferred ones, write nothing);
// kPropagate = true: derive in_channels from the inputs, adapt reshapes and write the inferred shapes.
template <bool kPropagate, class G>
void check_graph(G& g, ShapeScratch& scratch) {
  const size_t nt = g.tensors.size();
  if (g.ops.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()) ||
      nt > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw GraphError("graph: too many ops or tensors for int32 ids");
  }
  auto& writer = scratch.writer;
  auto& shape = scratch.shape;
  writer.assign(nt, -1);
  for (size_t i = 0; i < g.ops.size(); ++i) {
    auto& op = g.ops[i];
    const Ctx c{g, op, static_cast<int64_t>(i)};
    if (!known_kind(op.kind)) c.fail_value("kind", static_cast<int32_t>(op.kind), "is not a known op kind");
    if (op.output < 0 || static_cast<size_t>(op.output) >= nt) {
      c.fail_value("output", op.output, "is not a tensor id (graph has " + std::to_string(nt) + " tensors)");
    }
    const auto out_id = static_cast<size_t>(op.output);
    if (writer[out_id] >= 0) {
      c.fail_value("output", op.output, "is already written by op " + std::to_string(writer[out_id]) + " '" +
                                            g.ops[static_cast<size_t>(writer[out_id])].name + "'");
    }
    for (size_t k = 0; k < op.inputs.size(); ++k) {
      const int32_t id = op.inputs[k];
      if (id >= 0 && static_cast<size_t>(id) < nt && writer[static_cast<size_t>(id)] < 0) {
        c.fail("inputs", "[" + std::to_string(k) + "] = " + std::to_string(id) + " (tensor '" +
                             g.tensors[static_cast<size_t>(id)].name + "') is used before any op defines it");
      }
    }
    if constexpr (kPropagate) {
      check_input_ids(c);  // so the shapes below may be read
      derive_from_inputs(c, g, op, out_id);
    }
    infer_impl(c, shape, kPropagate);  // propagation checked the input ids above
    c.numel("output", shape);
    auto& rec = g.tensors[out_id].shape;
    if constexpr (!kPropagate) {
      if (rec != shape) {
        c.fail("output", "tensor " + std::to_string(op.output) + " '" + g.tensors[out_id].name + "' has shape " +
                             shape_str(rec) + ", the inferred shape is " + shape_str(shape));
      }
    } else {
      rec = shape;  // copy: keeps rec's and the scratch's capacity (no allocation per op in the batch API)
    }
    writer[out_id] = static_cast<int32_t>(i);
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const int32_t id = g.outputs[k];
    if (id < 0 || static_cast<size_t>(id) >= nt) {
      throw GraphError("graph: field 'outputs' [" + std::to_string(k) + "] = " + std::to_string(id) +
                       " is not a tensor id (graph has " + std::to_string(nt) + " tensors)");
    }
    if (writer[static_cast<size_t>(id)] < 0) {
      throw GraphError("graph: field 'outputs' [" + std::to_string(k) + "] = " + std::to_string(id) + " (tensor '" +
                       g.tensors[static_cast<size_t>(id)].name + "') is not written by any op");
    }
  }
}

}  // namespace

std::vector<int64_t> infer_shape(const Graph& g, const Op& op) {
  const Ctx c{g, op, op_index(g, op)};
  std::vector<int64_t> shape;
  infer_impl(c, shape);
  c.numel("output", shape);
  return shape;
}

void validate(const Graph& g) {
  ShapeScratch scratch;
  check_graph<false>(g, scratch);
}

void propagate_shapes(Graph& g) {
  ShapeScratch scratch;
  check_graph<true>(g, scratch);
}

void rederive_shapes(Graph& g, ShapeScratch& scratch) {
  for (size_t i = 0; i < g.ops.size(); ++i) {
    Op& op = g.ops[i];
    const Ctx c{g, op, static_cast<int64_t>(i)};
    const auto out_id = static_cast<size_t>(op.output);
    derive_from_inputs(c, g, op, out_id);
    infer_impl(c, scratch.shape, true);
    c.numel("output", scratch.shape);
    g.tensors[out_id].shape = scratch.shape;  // copy: keeps both capacities
  }
}

}  // namespace harcore
