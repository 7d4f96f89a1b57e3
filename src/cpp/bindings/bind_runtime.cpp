// harcore._core.runtime: builds a harcore::rt::Model from the Python lowering (harcore/quant/lower.py) and
// runs it batch-wise through the same harcore::rt::invoke the firmware compiles. The Python side passes one
// dict per step whose keys are the C++ field names of the *Args structs (nested dicts for nested structs, numpy
// arrays for pointer fields). The structs are built generically by visiting harcore_steps.def, the table they
// are generated from; this file owns the structs and the arrays they point to.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <algorithm>
#include <cstddef>
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
namespace kernels = harcore::kernels;  // the spelling of harcore_steps.def's ctypes

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw py::value_error("harcore runtime: " + where + ": " + what);
}

// ---- building any struct of harcore_steps.def from a dict ---------------------------------------------------

struct Ctx {
  const std::string& where;        // "step 3 (lstm)"
  std::vector<py::array>* keep;    // arrays the built structs point into
};

[[noreturn]] void bad(const Ctx& c, const std::string& path, const std::string& what) {
  fail(c.where, "field '" + path + "' " + what);
}

std::string join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

std::string type_name(py::handle v) { return py::str(py::type::of(v).attr("__name__")).cast<std::string>(); }

py::dict dict_of(py::handle h, const Ctx& c, const std::string& path) {
  if (!py::isinstance<py::dict>(h)) bad(c, path.empty() ? "args" : path, "must be a dict, got " + type_name(h));
  return py::reinterpret_borrow<py::dict>(h);
}

// A dict holding a key the struct lacks is an error: a misspelt or stale field would otherwise be ignored.
void no_extra(const py::dict& d, const std::vector<const char*>& known, const Ctx& c, const std::string& path,
              const char* cpp) {
  if (py::len(d) == known.size()) return;
  for (auto item : d) {
    const std::string key = py::str(item.first).cast<std::string>();
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
      bad(c, join(path, key.c_str()), std::string("is not a field of ") + cpp + " (harcore_steps.def)");
    }
  }
}

// The fill() overloads of every struct, declared first so that nested structs resolve in any order.
#define HARCORE_ARGS(S) void fill(py::handle h, rt::S* out, Ctx& c, const std::string& path);
#define HARCORE_KERNEL_STRUCT(S) void fill(py::handle h, k::S* out, Ctx& c, const std::string& path);
#include "runtime/harcore_steps.def"

// One value of each field tag of harcore_steps.def.
struct Tag_I32 {
  static constexpr bool partial = false;
  static void one(py::handle v, int32_t* out, Ctx& c, const std::string& path) {
    if (!PyIndex_Check(v.ptr()) || PyBool_Check(v.ptr())) bad(c, path, "must be an int, got " + type_name(v));
    const int64_t x = v.cast<int64_t>();
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) {
      bad(c, path, "does not fit in int32 (" + std::to_string(x) + ")");
    }
    *out = static_cast<int32_t>(x);
  }
};
template <class T, bool kOptional>
struct TagArray {
  static constexpr bool partial = false;
  static void one(py::handle v, const T** out, Ctx& c, const std::string& path) {
    if (kOptional && v.is_none()) {
      *out = nullptr;
      return;
    }
    if (!py::isinstance<py::array>(v) || !py::array::ensure(v).dtype().is(py::dtype::of<T>())) {
      bad(c, path, std::string("must be a numpy ") + (sizeof(T) == 1 ? "int8" : "int32") + " array" +
                       (kOptional ? " or None" : "") + ", got " + type_name(v));
    }
    auto a = py::array_t<T, py::array::c_style>::ensure(v);
    c.keep->push_back(a);
    *out = a.data();
  }
};
using Tag_I8P = TagArray<int8_t, false>;
using Tag_I32P = TagArray<int32_t, false>;
using Tag_I8P_OPT = TagArray<int8_t, true>;
struct Tag_ACT {
  static constexpr bool partial = false;
  static void one(py::handle v, k::arm_nn_activation_type* out, Ctx& c, const std::string& path) {
    const std::string s = py::isinstance<py::str>(v) ? v.cast<std::string>() : std::string();
#define HARCORE_ENUM(name, cpp) \
  if (s == #name) {             \
    *out = k::cpp;              \
    return;                     \
  }
#include "runtime/harcore_steps.def"
    bad(c, path, "must name an activation type (harcore_steps.def HARCORE_ENUM), got " + std::string(py::repr(v)));
  }
};
struct Tag_STRUCT {
  static constexpr bool partial = true;  // an array of structs may be given in part; the rest stays zero
  template <class T>
  static void one(py::handle v, T* out, Ctx& c, const std::string& path) {
    fill(v, out, c, path);
  }
};

template <class Tag, class T>
void field(const py::dict& d, const char* key, T& m, Ctx& c, const std::string& path) {
  if (!d.contains(key)) bad(c, join(path, key), "is missing");
  const py::object v = d[key];
  Tag::one(v, &m, c, join(path, key));
}
template <class Tag, class T, size_t N>
void field(const py::dict& d, const char* key, T (&m)[N], Ctx& c, const std::string& path) {
  const std::string p = join(path, key);
  if (!d.contains(key)) bad(c, p, "is missing");
  const py::object v = d[key];
  if (!py::isinstance<py::list>(v) && !py::isinstance<py::tuple>(v)) {
    bad(c, p, "must be a list of " + std::to_string(N) + ", got " + type_name(v));
  }
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(v);
  const size_t n = py::len(seq);
  if (Tag::partial ? (n < 1 || n > N) : n != N) {
    bad(c, p, std::string("must have ") + (Tag::partial ? "1 to " : "") + std::to_string(N) + " entries, got " +
                  std::to_string(n));
  }
  for (size_t i = 0; i < n; ++i) {
    const py::object item = seq[i];
    Tag::one(item, &m[i], c, p + "[" + std::to_string(i) + "]");
  }
}

#define HARCORE_FILL_BEGIN(T, cpp)                                       \
  void fill(py::handle h, T* out, Ctx& c, const std::string& path) {   \
    static const char* const kCpp = cpp;                                 \
    const py::dict d = dict_of(h, c, path);                              \
    std::vector<const char*> known;
#define HARCORE_FILL_FIELD(name, tag) \
  known.push_back(#name);             \
  field<Tag_##tag>(d, #name, out->name, c, path);
#define HARCORE_FILL_END   \
  no_extra(d, known, c, path, kCpp); \
  }
#define HARCORE_ARGS(S) HARCORE_FILL_BEGIN(rt::S, "rt::" #S)
#define HARCORE_KERNEL_STRUCT(S) HARCORE_FILL_BEGIN(k::S, "kernels::" #S)
#define HARCORE_FIELD(S, name, tag, ctype, extent) HARCORE_FILL_FIELD(name, tag)
#define HARCORE_KERNEL_FIELD(S, name, tag, ctype, extent) HARCORE_FILL_FIELD(name, tag)
#define HARCORE_END(S) HARCORE_FILL_END
#define HARCORE_KERNEL_END(S) HARCORE_FILL_END
#include "runtime/harcore_steps.def"

// The table as data, with the compiled layout of every struct, for harcore.quant.steps (the lowerer's checks
// and the emitter read it from here, so they describe exactly the structs this binary was compiled with).
py::dict step_table() {
  py::list kinds;
#define HARCORE_STEP(name, Enum, value, Args) kinds.append(py::make_tuple(#name, #Enum, value, #Args));
#include "runtime/harcore_steps.def"
  py::dict enums;
#define HARCORE_ENUM(name, cpp) enums[#name] = py::make_tuple("kernels::" #cpp, static_cast<int32_t>(k::cpp));
#include "runtime/harcore_steps.def"
  py::dict structs;
  py::list fields;
  auto field_info = [](const char* name, const char* tag, const char* ctype, size_t offset, size_t size,
                       size_t elem) {
    py::dict f;
    f["name"] = name;
    f["tag"] = tag;
    f["ctype"] = ctype;
    f["count"] = size / elem;
    f["array"] = false;
    f["offset"] = offset;
    f["size"] = size;
    return f;
  };
#define HARCORE_TABLE_BEGIN fields = py::list();
#define HARCORE_TABLE_FIELD(T, name, tag, ctype, extent)                                                        \
  {                                                                                                             \
    py::dict f = field_info(#name, #tag, #ctype, offsetof(T, name), sizeof(T::name), sizeof(ctype));            \
    f["array"] = sizeof(#extent) > 1;                                                                           \
    fields.append(f);                                                                                           \
  }
#define HARCORE_TABLE_END(T, S, cpp, generated)                                                                 \
  {                                                                                                             \
    py::dict s;                                                                                                 \
    s["cpp"] = cpp;                                                                                             \
    s["generated"] = generated;                                                                                 \
    s["size"] = sizeof(T);                                                                                      \
    s["align"] = alignof(T);                                                                                    \
    s["fields"] = fields;                                                                                       \
    structs[#S] = s;                                                                                            \
  }
#define HARCORE_ARGS(S) HARCORE_TABLE_BEGIN
#define HARCORE_KERNEL_STRUCT(S) HARCORE_TABLE_BEGIN
#define HARCORE_FIELD(S, name, tag, ctype, extent) HARCORE_TABLE_FIELD(rt::S, name, tag, ctype, extent)
#define HARCORE_KERNEL_FIELD(S, name, tag, ctype, extent) HARCORE_TABLE_FIELD(k::S, name, tag, ctype, extent)
#define HARCORE_END(S) HARCORE_TABLE_END(rt::S, S, "rt::" #S, true)
#define HARCORE_KERNEL_END(S) HARCORE_TABLE_END(k::S, S, "kernels::" #S, false)
#include "runtime/harcore_steps.def"
  py::dict t;
  t["format_version"] = rt::kFormatVersion;
  t["pointer_size"] = sizeof(void*);
  t["kinds"] = kinds;
  t["enums"] = enums;
  t["structs"] = structs;
  return t;
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
      if (!s.contains("args")) fail(where + " (" + kind + ")", "field 'args' is missing");
      st.args = build(kind, s["args"], where + " (" + kind + ")", &st.kind);
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
  // One store per *Args struct of harcore_steps.def; deques keep the structs' addresses stable.
#define HARCORE_ARGS(S) std::deque<rt::S> S##_store_;
#include "runtime/harcore_steps.def"
  std::vector<py::array> keep_;  // arrays the structs point into

  static int32_t geti(const py::dict& d, const char* key, const std::string& where) {
    if (!d.contains(key)) fail(where, std::string("field '") + key + "' is missing");
    const int64_t v = d[key].cast<int64_t>();
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      fail(where, std::string("field '") + key + "' does not fit in int32");
    }
    return static_cast<int32_t>(v);
  }

  const void* build(const std::string& kind, py::handle a, const std::string& where, int32_t* k_out) {
    Ctx c{where, &keep_};
#define HARCORE_STEP(name, Enum, value, Args) \
  if (kind == #name) {                         \
    *k_out = rt::Enum;                         \
    rt::Args& x = Args##_store_.emplace_back(); \
    fill(a, &x, c, "");                        \
    return &x;                                 \
  }
#include "runtime/harcore_steps.def"
    fail(where, "unknown step kind '" + kind + "'");
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
  m.def("step_table", &step_table,
        "harcore_steps.def as compiled into this binary: {'kinds': [(name, enum, value, args struct)], 'enums', "
        "'structs': {name: {'cpp', 'generated', 'size', 'align', 'fields': [{'name', 'tag', 'ctype', 'count', "
        "'array', 'offset', 'size'}]}}, 'pointer_size', 'format_version'}; struct fields in declaration order.");
}
