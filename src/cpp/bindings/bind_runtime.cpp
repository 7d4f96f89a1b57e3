// harcore._core.runtime: builds a harcore::rt::Model from the Python lowering (harcore/quant/lower.py) and
// runs it batch-wise through the same harcore::rt::invoke the firmware compiles. The Python side passes one
// dict per step whose keys are the C++ field names of harcore_runtime.hpp's *Args structs (nested dicts for
// nested structs, numpy arrays for pointer fields); this file owns the structs and the arrays they point to.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kernels/arm_nnfunctions.hpp"
#include "runtime/harcore_runtime.hpp"

namespace py = pybind11;
namespace k = harcore::kernels;
namespace rt = harcore::rt;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw py::value_error("harcore runtime: " + where + ": " + what);
}

class OwnedModel {
 public:
  rt::Model model{};

  OwnedModel(const py::dict& header, const py::list& steps) {
    model.format_version = geti(header, "format_version", "model");
    model.arena_size = geti(header, "arena_size", "model");
    model.input_offset = geti(header, "input_offset", "model");
    model.input_size = geti(header, "input_size", "model");
    model.output_offset = geti(header, "output_offset", "model");
    model.output_size = geti(header, "output_size", "model");
    steps_.resize(py::len(steps));
    for (size_t i = 0; i < steps_.size(); ++i) {
      const py::dict s = steps[i].cast<py::dict>();
      const std::string where = "step " + std::to_string(i);
      rt::Step& st = steps_[i];
      const std::string kind = s["kind"].cast<std::string>();
      st.input0 = geti(s, "input0", where);
      st.input1 = geti(s, "input1", where);
      st.output = geti(s, "output", where);
      st.output_size = geti(s, "output_size", where);
      st.scratch = geti(s, "scratch", where);
      st.scratch_size = geti(s, "scratch_size", where);
      const py::dict a = s["args"].cast<py::dict>();
      st.args = build(kind, a, where + " (" + kind + ")", &st.kind);
    }
    model.steps = steps_.data();
    model.num_steps = static_cast<int32_t>(steps_.size());
  }

  // Runs every row of x (N, input_size) int8; returns (N, output_size) and, with capture, one (N, output_size
  // of the step) array per step holding the step's output bytes.
  py::tuple run(const py::array_t<int8_t, py::array::c_style | py::array::forcecast>& x, bool capture,
                int64_t threads) const {
    if (x.ndim() != 2 || x.shape(1) != model.input_size) {
      fail("run", "input must have shape (N, " + std::to_string(model.input_size) + ")");
    }
    if (threads < 1 || threads > 1024) fail("run", "threads must be in [1, 1024], got " + std::to_string(threads));
    const py::ssize_t n = x.shape(0);
    py::array_t<int8_t> out({n, static_cast<py::ssize_t>(model.output_size)});
    std::vector<py::array_t<int8_t>> caps;
    std::vector<int8_t*> cap_ptr;
    if (capture) {
      for (const rt::Step& s : steps_) {
        caps.emplace_back(std::vector<py::ssize_t>{n, static_cast<py::ssize_t>(s.output_size)});
        cap_ptr.push_back(caps.back().mutable_data());
      }
    }
    const int8_t* xin = x.data();
    int8_t* o = out.mutable_data();
    int32_t status = rt::kOk;
    py::ssize_t failed = -1;
    // Rows [begin, end) with their own arena; stops at the first failing row (status, row).
    auto run_rows = [&](py::ssize_t begin, py::ssize_t end, int32_t* st, py::ssize_t* bad) {
      std::vector<int32_t> storage(static_cast<size_t>(model.arena_size + 3) / 4 + 1, 0);
      int8_t* arena = reinterpret_cast<int8_t*>(storage.data());
      struct Ctx {
        const rt::Step* steps;
        int8_t* const* caps;
        py::ssize_t row;
      } ctx{steps_.data(), cap_ptr.data(), 0};
      auto observer = [](void* user, int32_t i, const int8_t* ar) {
        Ctx* c = static_cast<Ctx*>(user);
        const rt::Step& s = c->steps[i];
        std::memcpy(c->caps[i] + c->row * s.output_size, ar + s.output, static_cast<size_t>(s.output_size));
      };
      for (py::ssize_t r = begin; r < end; ++r) {
        ctx.row = r;
        *st = rt::invoke_observed(model, xin + r * model.input_size, o + r * model.output_size, arena,
                                  model.arena_size, capture ? +observer : nullptr, &ctx);
        if (*st != rt::kOk) {
          *bad = r;
          break;
        }
      }
    };
    {
      py::gil_scoped_release release;
      const py::ssize_t nt = std::min<py::ssize_t>(static_cast<py::ssize_t>(threads), n);
      if (nt <= 1) {
        run_rows(0, n, &status, &failed);
      } else {
        // Contiguous row ranges, one per thread: windows are independent and every thread writes only its
        // own output (and capture) rows, so the result is the single-thread result.
        std::vector<int32_t> sts(static_cast<size_t>(nt), rt::kOk);
        std::vector<py::ssize_t> bads(static_cast<size_t>(nt), -1);
        std::vector<std::thread> pool;
        for (py::ssize_t t = 0; t < nt; ++t) {
          pool.emplace_back(run_rows, n * t / nt, n * (t + 1) / nt, &sts[static_cast<size_t>(t)],
                            &bads[static_cast<size_t>(t)]);
        }
        for (auto& th : pool) th.join();
        for (size_t t = 0; t < sts.size(); ++t) {
          if (sts[t] != rt::kOk) {  // the first failing window in row order, as one thread reports it
            status = sts[t];
            failed = bads[t];
            break;
          }
        }
      }
    }
    if (status != rt::kOk) {
      std::string why = status == rt::kBadArgument ? "bad argument"
                        : status == rt::kBadModel  ? "malformed model"
                                                   : "kernel error at step " + std::to_string(rt::kKernelError - status);
      fail("invoke", "window " + std::to_string(failed) + " returned status " + std::to_string(status) + " (" + why + ")");
    }
    py::list cl;
    for (auto& c : caps) cl.append(c);
    return py::make_tuple(out, cl);
  }

 private:
  std::vector<rt::Step> steps_;
  std::deque<rt::ConvArgs> conv_;
  std::deque<rt::DepthwiseArgs> dw_;
  std::deque<rt::FullyConnectedArgs> fc_;
  std::deque<rt::PoolArgs> pool_;
  std::deque<rt::AddArgs> add_;
  std::deque<rt::MulArgs> mul_;
  std::deque<rt::SoftmaxArgs> softmax_;
  std::deque<rt::ReduceSumArgs> sum_;
  std::deque<rt::ClampArgs> clamp_;
  std::deque<rt::LstmArgs> lstm_;
  std::deque<rt::GruArgs> gru_;
  std::deque<rt::CopyArgs> copy_;
  std::deque<rt::GatherArgs> gather_;
  std::deque<rt::BatchMatMulArgs> bmm_;
  std::deque<rt::LutArgs> lut_;
  std::vector<py::array> keep_;  // arrays the structs point into

  static int32_t geti(const py::dict& d, const char* key, const std::string& where) {
    if (!d.contains(key)) fail(where, std::string("field '") + key + "' is missing");
    const int64_t v = d[key].cast<int64_t>();
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      fail(where, std::string("field '") + key + "' does not fit in int32");
    }
    return static_cast<int32_t>(v);
  }
  template <class T>
  const T* arr(const py::dict& d, const char* key, const std::string& where) {
    if (!d.contains(key)) fail(where, std::string("array '") + key + "' is missing");
    py::object o = d[key];
    if (!py::isinstance<py::array>(o) || !py::array(o).dtype().is(py::dtype::of<T>())) {
      fail(where, std::string("array '") + key + "' has the wrong type");
    }
    auto a = py::array_t<T, py::array::c_style>::ensure(o);
    keep_.push_back(a);
    return a.data();
  }
  static py::dict sub(const py::dict& d, const char* key) { return d[key].cast<py::dict>(); }
  static k::cmsis_nn_dims dims(const py::dict& d, const char* key, const std::string& w) {
    const py::dict x = sub(d, key);
    return {geti(x, "n", w), geti(x, "h", w), geti(x, "w", w), geti(x, "c", w)};
  }
  static k::cmsis_nn_tile tile(const py::dict& d, const char* key, const std::string& w) {
    const py::dict x = sub(d, key);
    return {geti(x, "w", w), geti(x, "h", w)};
  }
  static k::cmsis_nn_activation act(const py::dict& d, const char* key, const std::string& w) {
    const py::dict x = sub(d, key);
    return {geti(x, "min", w), geti(x, "max", w)};
  }
  static void four(const py::dict& d, const char* key, int32_t* out, const std::string& w) {
    const std::vector<int64_t> v = d[key].cast<std::vector<int64_t>>();
    if (v.size() != 4) fail(w, std::string("field '") + key + "' must have 4 entries");
    for (int i = 0; i < 4; ++i) out[i] = static_cast<int32_t>(v[static_cast<size_t>(i)]);
  }
  static k::cmsis_nn_add_params addp(const py::dict& x, const std::string& w) {
    return {geti(x, "input1_offset", w), geti(x, "input1_mult", w), geti(x, "input1_shift", w),
            geti(x, "input2_offset", w), geti(x, "input2_mult", w), geti(x, "input2_shift", w),
            geti(x, "left_shift", w),    geti(x, "output_offset", w), geti(x, "output_mult", w),
            geti(x, "output_shift", w)};
  }
  static k::cmsis_nn_mul_params mulp(const py::dict& x, const std::string& w) {
    return {geti(x, "input1_offset", w), geti(x, "input2_offset", w), geti(x, "output_offset", w),
            geti(x, "output_mult", w), geti(x, "output_shift", w)};
  }
  static k::cmsis_nn_lut_act_params lutp(const py::dict& x, const std::string& w) {
    return {geti(x, "input_zero_point", w), geti(x, "input_range_radius", w), geti(x, "input_multiplier", w),
            geti(x, "input_left_shift", w)};
  }
  k::cmsis_nn_lstm_gate gate(const py::dict& x, const std::string& w, k::arm_nn_activation_type t) {
    k::cmsis_nn_lstm_gate g{};
    g.input_multiplier = geti(x, "input_multiplier", w);
    g.input_shift = geti(x, "input_shift", w);
    g.input_weights = arr<int8_t>(x, "input_weights", w);
    g.input_effective_bias = arr<int32_t>(x, "input_effective_bias", w);
    g.hidden_multiplier = geti(x, "hidden_multiplier", w);
    g.hidden_shift = geti(x, "hidden_shift", w);
    g.hidden_weights = arr<int8_t>(x, "hidden_weights", w);
    g.hidden_effective_bias = arr<int32_t>(x, "hidden_effective_bias", w);
    g.activation_type = t;
    return g;
  }
  k::cmsis_nn_gru_fc grufc(const py::dict& x, const std::string& w) {
    return {arr<int8_t>(x, "weights", w), arr<int32_t>(x, "bias", w), arr<int32_t>(x, "multiplier", w),
            arr<int32_t>(x, "shift", w), geti(x, "output_offset", w)};
  }

  // The input/filter/output shapes of conv, depthwise and pool steps.
  template <class C>
  static void io_dims(C& c, const py::dict& a, const std::string& w) {
    c.input_dims = dims(a, "input_dims", w);
    c.filter_dims = dims(a, "filter_dims", w);
    c.output_dims = dims(a, "output_dims", w);
  }
  // The int8 filter with its int32 bias and per-channel requantization of conv, depthwise and fully_connected.
  template <class C>
  void weights(C& c, const py::dict& a, const std::string& w) {
    c.filter = arr<int8_t>(a, "filter", w);
    c.bias = arr<int32_t>(a, "bias", w);
    c.multiplier = arr<int32_t>(a, "multiplier", w);
    c.shift = arr<int32_t>(a, "shift", w);
  }
  // The per-direction parameter dicts of an lstm/gru step (1 or 2 of them); sets *num to their count.
  static py::list directions(const py::dict& a, int32_t* num, const std::string& w) {
    const py::list dirs = a["dir"].cast<py::list>();
    *num = static_cast<int32_t>(py::len(dirs));
    if (*num < 1 || *num > 2) fail(w, "field 'dir' must have 1 or 2 entries");
    return dirs;
  }

  const void* build(const std::string& kind, const py::dict& a, const std::string& w, int32_t* k_out) {
    if (kind == "conv") {
      *k_out = rt::kConv;
      rt::ConvArgs& c = conv_.emplace_back();
      const py::dict p = sub(a, "conv");
      c.conv = {geti(p, "input_offset", w), geti(p, "output_offset", w), tile(p, "stride", w), tile(p, "padding", w),
                tile(p, "dilation", w), act(p, "activation", w)};
      io_dims(c, a, w);
      weights(c, a, w);
      return &c;
    }
    if (kind == "depthwise") {
      *k_out = rt::kDepthwise;
      rt::DepthwiseArgs& c = dw_.emplace_back();
      const py::dict p = sub(a, "dw");
      c.dw = {geti(p, "input_offset", w), geti(p, "output_offset", w), geti(p, "ch_mult", w), tile(p, "stride", w),
              tile(p, "padding", w), tile(p, "dilation", w), act(p, "activation", w)};
      io_dims(c, a, w);
      weights(c, a, w);
      return &c;
    }
    if (kind == "fully_connected") {
      *k_out = rt::kFullyConnected;
      rt::FullyConnectedArgs& c = fc_.emplace_back();
      const py::dict p = sub(a, "fc");
      c.fc = {geti(p, "input_offset", w), geti(p, "filter_offset", w), geti(p, "output_offset", w),
              act(p, "activation", w)};
      c.batches = geti(a, "batches", w);
      c.depth = geti(a, "depth", w);
      c.out_features = geti(a, "out_features", w);
      weights(c, a, w);
      return &c;
    }
    if (kind == "max_pool" || kind == "avg_pool") {
      *k_out = kind == "max_pool" ? rt::kMaxPool : rt::kAvgPool;
      rt::PoolArgs& c = pool_.emplace_back();
      const py::dict p = sub(a, "pool");
      c.pool = {tile(p, "stride", w), tile(p, "padding", w), act(p, "activation", w)};
      io_dims(c, a, w);
      return &c;
    }
    if (kind == "add") {
      *k_out = rt::kAdd;
      rt::AddArgs& c = add_.emplace_back();
      c.p = addp(sub(a, "p"), w);
      c.act_min = geti(a, "act_min", w);
      c.act_max = geti(a, "act_max", w);
      c.size = geti(a, "size", w);
      c.subtract = geti(a, "subtract", w);
      return &c;
    }
    if (kind == "mul") {
      *k_out = rt::kMul;
      rt::MulArgs& c = mul_.emplace_back();
      c.p = mulp(sub(a, "p"), w);
      c.act_min = geti(a, "act_min", w);
      c.act_max = geti(a, "act_max", w);
      four(a, "dims", c.dims, w);
      four(a, "input0_strides", c.input0_strides, w);
      four(a, "input1_strides", c.input1_strides, w);
      c.input1_data = a.contains("input1_data") && !a["input1_data"].is_none() ? arr<int8_t>(a, "input1_data", w)
                                                                               : nullptr;
      return &c;
    }
    if (kind == "softmax") {
      *k_out = rt::kSoftmax;
      softmax_.push_back({geti(a, "rows", w), geti(a, "row_size", w), geti(a, "mult", w), geti(a, "shift", w),
                          geti(a, "diff_min", w)});
      return &softmax_.back();
    }
    if (kind == "reduce_sum") {
      *k_out = rt::kReduceSum;
      sum_.push_back({geti(a, "outer", w), geti(a, "reduce", w), geti(a, "inner", w), geti(a, "input_offset", w),
                      geti(a, "output_offset", w), geti(a, "mult", w), geti(a, "shift", w)});
      return &sum_.back();
    }
    if (kind == "clamp") {
      *k_out = rt::kClamp;
      clamp_.push_back({geti(a, "size", w), geti(a, "input_offset", w), geti(a, "output_offset", w), geti(a, "mult", w),
                        geti(a, "shift", w), geti(a, "act_min", w), geti(a, "act_max", w)});
      return &clamp_.back();
    }
    if (kind == "lstm") {
      *k_out = rt::kLstm;
      rt::LstmArgs& c = lstm_.emplace_back();
      const py::list dirs = directions(a, &c.num_directions, w);
      for (int32_t d = 0; d < c.num_directions; ++d) {
        const py::dict p = dirs[static_cast<size_t>(d)].cast<py::dict>();
        k::cmsis_nn_lstm_params& q = c.dir[d];
        q.time_major = geti(p, "time_major", w);
        q.batch_size = geti(p, "batch_size", w);
        q.time_steps = geti(p, "time_steps", w);
        q.input_size = geti(p, "input_size", w);
        q.hidden_size = geti(p, "hidden_size", w);
        q.input_offset = geti(p, "input_offset", w);
        q.forget_to_cell_multiplier = geti(p, "forget_to_cell_multiplier", w);
        q.forget_to_cell_shift = geti(p, "forget_to_cell_shift", w);
        q.input_to_cell_multiplier = geti(p, "input_to_cell_multiplier", w);
        q.input_to_cell_shift = geti(p, "input_to_cell_shift", w);
        q.cell_clip = geti(p, "cell_clip", w);
        q.cell_scale_power = geti(p, "cell_scale_power", w);
        q.output_multiplier = geti(p, "output_multiplier", w);
        q.output_shift = geti(p, "output_shift", w);
        q.output_offset = geti(p, "output_offset", w);
        q.input_gate = gate(sub(p, "input_gate"), w, k::ARM_SIGMOID);
        q.forget_gate = gate(sub(p, "forget_gate"), w, k::ARM_SIGMOID);
        q.cell_gate = gate(sub(p, "cell_gate"), w, k::ARM_TANH);
        q.output_gate = gate(sub(p, "output_gate"), w, k::ARM_SIGMOID);
      }
      c.reversed_input = geti(a, "reversed_input", w);
      return &c;
    }
    if (kind == "gru") {
      *k_out = rt::kGru;
      rt::GruArgs& c = gru_.emplace_back();
      const py::list dirs = directions(a, &c.num_directions, w);
      for (int32_t d = 0; d < c.num_directions; ++d) {
        const py::dict p = dirs[static_cast<size_t>(d)].cast<py::dict>();
        k::cmsis_nn_gru_params& q = c.dir[d];
        q.time_steps = geti(p, "time_steps", w);
        q.input_size = geti(p, "input_size", w);
        q.hidden_size = geti(p, "hidden_size", w);
        q.reverse = geti(p, "reverse", w);
        q.output_stride = geti(p, "output_stride", w);
        q.input_offset = geti(p, "input_offset", w);
        q.hidden_zero_point = geti(p, "hidden_zero_point", w);
        const py::list xf = p["x_fc"].cast<py::list>(), hf = p["h_fc"].cast<py::list>();
        for (size_t g = 0; g < 3; ++g) {
          q.x_fc[g] = grufc(xf[g].cast<py::dict>(), w);
          q.h_fc[g] = grufc(hf[g].cast<py::dict>(), w);
        }
        q.add_r = addp(sub(p, "add_r"), w);
        q.add_z = addp(sub(p, "add_z"), w);
        q.sig_r = lutp(sub(p, "sig_r"), w);
        q.sig_z = lutp(sub(p, "sig_z"), w);
        q.mul_rn = mulp(sub(p, "mul_rn"), w);
        q.add_n = addp(sub(p, "add_n"), w);
        q.tanh_n = lutp(sub(p, "tanh_n"), w);
        q.sub_d = addp(sub(p, "sub_d"), w);
        q.mul_zd = mulp(sub(p, "mul_zd"), w);
        q.add_h = addp(sub(p, "add_h"), w);
      }
      return &c;
    }
    if (kind == "copy") {
      *k_out = rt::kCopy;
      rt::CopyArgs& c = copy_.emplace_back();
      c.src_offset = geti(a, "src_offset", w);
      four(a, "extents", c.extents, w);
      four(a, "strides", c.strides, w);
      return &c;
    }
    if (kind == "gather") {
      *k_out = rt::kGather;
      gather_.push_back({geti(a, "size", w), arr<int32_t>(a, "index", w)});
      return &gather_.back();
    }
    if (kind == "batch_matmul") {
      *k_out = rt::kBatchMatMul;
      rt::BatchMatMulArgs& c = bmm_.emplace_back();
      const py::dict p = sub(a, "bmm");
      const py::dict fc = sub(p, "fc_params");
      c.bmm = {geti(p, "adj_x", w), geti(p, "adj_y", w),
               {geti(fc, "input_offset", w), geti(fc, "filter_offset", w), geti(fc, "output_offset", w),
                act(fc, "activation", w)}};
      const py::dict q = sub(a, "quant");
      c.quant = {geti(q, "multiplier", w), geti(q, "shift", w)};
      c.lhs_dims = dims(a, "lhs_dims", w);
      c.rhs_dims = dims(a, "rhs_dims", w);
      c.output_dims = dims(a, "output_dims", w);
      return &c;
    }
    if (kind == "tanh" || kind == "logistic") {
      *k_out = kind == "tanh" ? rt::kTanh : rt::kLogistic;
      lut_.push_back({geti(a, "size", w), lutp(sub(a, "p"), w)});
      return &lut_.back();
    }
    fail(w, "unknown step kind '" + kind + "'");
  }
};

}  // namespace

void bind_runtime(py::module_& parent) {
  py::module_ m = parent.def_submodule(
      "runtime", "harcore's int8 runtime (src/cpp/runtime): lowered programs run through harcore::rt::invoke.");
  py::class_<OwnedModel>(m, "Model")
      .def(py::init<const py::dict&, const py::list&>(), py::arg("header"), py::arg("steps"))
      .def("run", &OwnedModel::run, py::arg("x"), py::arg("capture") = false, py::arg("threads") = 1,
           "Run every row of x (N, input_size) int8, split over `threads` threads (GIL released); returns (outputs "
           "(N, output_size), per-step captures).");
  m.def(
      "conv_scratch",
      [](std::vector<int32_t> in, std::vector<int32_t> f, std::vector<int32_t> out, std::vector<int32_t> stride,
         std::vector<int32_t> pad, std::vector<int32_t> dil) {
        k::cmsis_nn_conv_params p{};
        p.stride = {stride[1], stride[0]};
        p.padding = {pad[1], pad[0]};
        p.dilation = {dil[1], dil[0]};
        const k::cmsis_nn_dims i{in[0], in[1], in[2], in[3]}, fd{f[0], f[1], f[2], f[3]}, o{out[0], out[1], out[2], out[3]};
        return k::arm_convolve_wrapper_s8_get_buffer_size_dsp(&p, &i, &fd, &o);
      },
      "DSP scratch bytes of arm_convolve_wrapper_s8 (dims n,h,w,c; stride/pad/dilation (h, w)).");
  m.def(
      "depthwise_scratch",
      [](std::vector<int32_t> in, std::vector<int32_t> f, std::vector<int32_t> out, std::vector<int32_t> stride,
         std::vector<int32_t> pad, std::vector<int32_t> dil, int32_t ch_mult) {
        k::cmsis_nn_dw_conv_params p{};
        p.ch_mult = ch_mult;
        p.stride = {stride[1], stride[0]};
        p.padding = {pad[1], pad[0]};
        p.dilation = {dil[1], dil[0]};
        const k::cmsis_nn_dims i{in[0], in[1], in[2], in[3]}, fd{f[0], f[1], f[2], f[3]}, o{out[0], out[1], out[2], out[3]};
        return k::arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(&p, &i, &fd, &o);
      },
      "DSP scratch bytes of arm_depthwise_conv_wrapper_s8.");
  m.def("avgpool_scratch", &k::arm_avgpool_s8_get_buffer_size_dsp, py::arg("dim_dst_width"), py::arg("ch_src"));
  m.def("lstm_scratch", &k::arm_lstm_unidirectional_s8_get_buffer_size, py::arg("hidden_size"), py::arg("batch") = 1);
  m.def("gru_scratch", &k::arm_gru_unidirectional_s8_get_buffer_size, py::arg("hidden_size"), py::arg("batch") = 1);
  m.attr("FORMAT_VERSION") = rt::kFormatVersion;
}
