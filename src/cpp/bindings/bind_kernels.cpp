// harcore._core.kernels: the CMSIS-NN-equivalent s8 kernels (src/cpp/kernels) callable on numpy arrays.
//
// Activations are NHWC int8, conv filters OHWI, depthwise filters 1HWC, FC weights [C_out, K], biases,
// multipliers and shifts int32 (CMSIS-NN layouts). Geometry arguments are (h, w) tuples. Every argument is
// validated here (dtype, shape, ranges) and a bad one raises ValueError naming the kernel and argument,
// so no bad shape reaches a kernel; a kernel's non-success status also becomes a ValueError naming the
// kernel. Scratch buffers are allocated with the kernel's getter: the DSP (Cortex-M33, GCC) size, which
// is what the firmware and the cost model use, so the buffered code paths run on the host too.
// `buffer_size` overrides it (0 = NULL buffer) for testing a kernel's buffer contract.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/arm_nn_lstm.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"

namespace py = pybind11;
namespace k = harcore::kernels;

namespace {

using HW = std::pair<int64_t, int64_t>;  // (h, w)

[[noreturn]] void fail(const std::string& kernel, const std::string& arg, const std::string& what) {
  throw py::value_error(kernel + ": argument '" + arg + "' " + what);
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A C-contiguous array of exactly dtype T (no silent casts), with ndim dimensions (-1: any).
template <class T>
py::array_t<T, py::array::c_style> typed(const std::string& kernel, const std::string& arg, const py::handle& h,
                                         int ndim) {
  if (h.is_none() || !py::isinstance<py::array>(h)) fail(kernel, arg, "must be a numpy array");
  const py::array a = py::reinterpret_borrow<py::array>(h);
  if (!a.dtype().is(py::dtype::of<T>())) {
    fail(kernel, arg,
         std::string("must have dtype ") + (sizeof(T) == 1 ? "int8" : "int32") + ", got " + std::string(py::str(a.dtype())));
  }
  if (ndim >= 0 && a.ndim() != ndim) {
    fail(kernel, arg, "must have " + std::to_string(ndim) + " dimensions, got shape " + shape_str(a));
  }
  if (a.size() > std::numeric_limits<int32_t>::max()) fail(kernel, arg, "is too large for int32 indexing");
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.shape(i) < 1) fail(kernel, arg, "must not be empty, got shape " + shape_str(a));
  }
  return py::array_t<T, py::array::c_style>::ensure(a);
}

int32_t i32(const std::string& kernel, const std::string& arg, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    fail(kernel, arg, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  }
  return static_cast<int32_t>(v);
}

k::cmsis_nn_tile tile(const std::string& kernel, const std::string& arg, const HW& hw, int64_t lo) {
  k::cmsis_nn_tile t;
  t.h = i32(kernel, arg + "[0] (h)", hw.first, lo, 1 << 20);
  t.w = i32(kernel, arg + "[1] (w)", hw.second, lo, 1 << 20);
  return t;
}

k::cmsis_nn_activation activation(const std::string& kernel, const HW& range) {
  k::cmsis_nn_activation a;
  a.min = i32(kernel, "activation[0] (min)", range.first, -128, 127);
  a.max = i32(kernel, "activation[1] (max)", range.second, -128, 127);
  if (a.min > a.max) fail(kernel, "activation", "must have min <= max");
  return a;
}

int32_t dim(const py::array& a, py::ssize_t i) { return static_cast<int32_t>(a.shape(i)); }

// Per-channel int32 vectors of length n; shift within CMSIS-NN's documented {-31 .. 30}.
void check_vector(const std::string& kernel, const std::string& arg, const py::array_t<int32_t, py::array::c_style>& v,
                  int32_t n) {
  if (v.shape(0) != n) {
    fail(kernel, arg, "must have shape (" + std::to_string(n) + ",), got " + shape_str(v));
  }
}

void check_shifts(const std::string& kernel, const py::array_t<int32_t, py::array::c_style>& s) {
  for (py::ssize_t i = 0; i < s.size(); ++i) {
    const int32_t v = s.data()[i];
    if (v < -31 || v > 30) fail(kernel, "shift", "values must be in [-31, 30], got " + std::to_string(v));
  }
}

// Caller-owned scratch: int32 storage so that any alignment the kernels need holds.
struct Scratch {
  std::vector<int32_t> storage;
  k::cmsis_nn_context ctx{nullptr, 0};
  Scratch(const std::string& kernel, int32_t getter_size, std::optional<int64_t> override_size) {
    if (getter_size < 0) fail(kernel, "input/filter", "give no valid scratch size (the getter returned an error)");
    int64_t size = getter_size;
    if (override_size) {
      if (*override_size < 0 || *override_size > std::numeric_limits<int32_t>::max()) {
        fail(kernel, "buffer_size", "must be in [0, 2^31 - 1]");
      }
      size = *override_size;
    }
    if (size > 0) {
      storage.assign(static_cast<size_t>((size + 3) / 4), 0);
      ctx.buf = storage.data();
    }
    ctx.size = static_cast<int32_t>(size);
  }
};

void check_status(k::arm_cmsis_nn_status st, const std::string& kernel, const std::string& hint) {
  if (st == k::ARM_CMSIS_NN_SUCCESS) return;
  const char* name = st == k::ARM_CMSIS_NN_ARG_ERROR      ? "ARM_CMSIS_NN_ARG_ERROR"
                     : st == k::ARM_CMSIS_NN_NO_IMPL_ERROR ? "ARM_CMSIS_NN_NO_IMPL_ERROR"
                                                           : "ARM_CMSIS_NN_FAILURE";
  throw py::value_error(kernel + " returned " + name + ": " + hint);
}

std::string ctx_hint(const Scratch& s, int32_t getter_size) {
  return "argument 'ctx' holds a " + std::to_string(s.ctx.size) + "-byte buffer" +
         (s.ctx.buf == nullptr ? " (NULL)" : "") + ", the getter asks for " + std::to_string(getter_size) + " bytes";
}

// ---- convolution family ------------------------------------------------------------------------------

using ConvFn = k::arm_cmsis_nn_status (*)(const k::cmsis_nn_context*, const k::cmsis_nn_conv_params*,
                                          const k::cmsis_nn_per_channel_quant_params*, const k::cmsis_nn_dims*,
                                          const int8_t*, const k::cmsis_nn_dims*, const int8_t*,
                                          const k::cmsis_nn_dims*, const int32_t*, const k::cmsis_nn_dims*, int8_t*);
using ConvGetter = int32_t (*)(const k::cmsis_nn_conv_params*, const k::cmsis_nn_dims*, const k::cmsis_nn_dims*,
                               const k::cmsis_nn_dims*);

int32_t out_extent(const std::string& kernel, const char* arg, int64_t in, int64_t pad, int64_t eff_k, int64_t stride) {
  const int64_t span = in + 2 * pad - eff_k;
  if (span < 0) fail(kernel, arg, "is smaller than the (dilated) filter plus padding; pass output_shape");
  return static_cast<int32_t>(span / stride + 1);
}

k::cmsis_nn_dims output_dims_for(const std::string& kernel, const k::cmsis_nn_dims& in, int32_t c_out, int32_t kh,
                                 int32_t kw, const k::cmsis_nn_tile& stride, const k::cmsis_nn_tile& pad,
                                 const k::cmsis_nn_tile& dil, const std::optional<HW>& output_shape) {
  k::cmsis_nn_dims out{in.n, 0, 0, c_out};
  if (output_shape) {
    out.h = i32(kernel, "output_shape[0] (h)", output_shape->first, 1, 1 << 20);
    out.w = i32(kernel, "output_shape[1] (w)", output_shape->second, 1, 1 << 20);
  } else {
    out.h = out_extent(kernel, "input (h)", in.h, pad.h, int64_t{dil.h} * (kh - 1) + 1, stride.h);
    out.w = out_extent(kernel, "input (w)", in.w, pad.w, int64_t{dil.w} * (kw - 1) + 1, stride.w);
  }
  if (int64_t{out.n} * out.h * out.w * out.c > std::numeric_limits<int32_t>::max()) {
    fail(kernel, "output_shape", "gives an output too large for int32 indexing");
  }
  return out;
}

py::array_t<int8_t> run_conv(const std::string& kernel, ConvFn fn, ConvGetter getter, const char* path_rule,
                             const py::handle& input_h, const py::handle& filter_h, const py::handle& bias_h,
                             const py::handle& mult_h, const py::handle& shift_h, int64_t input_offset,
                             int64_t output_offset, const HW& stride, const HW& padding, const HW& dilation,
                             const HW& act, const std::optional<HW>& output_shape, std::optional<int64_t> buffer_size) {
  const auto input = typed<int8_t>(kernel, "input", input_h, 4);
  const auto filter = typed<int8_t>(kernel, "filter", filter_h, 4);
  const k::cmsis_nn_dims in{dim(input, 0), dim(input, 1), dim(input, 2), dim(input, 3)};
  const k::cmsis_nn_dims f{dim(filter, 0), dim(filter, 1), dim(filter, 2), dim(filter, 3)};
  if (in.c % f.c != 0) {
    fail(kernel, "filter", "input channels per group (" + std::to_string(f.c) + ") must divide the input's " +
                               std::to_string(in.c) + " channels");
  }
  const int32_t groups = in.c / f.c;
  if (f.n % groups != 0) {
    fail(kernel, "filter", "output channels (" + std::to_string(f.n) + ") must be divisible by groups (" +
                               std::to_string(groups) + ")");
  }
  const auto mult = typed<int32_t>(kernel, "multiplier", mult_h, 1);
  const auto shift = typed<int32_t>(kernel, "shift", shift_h, 1);
  check_vector(kernel, "multiplier", mult, f.n);
  check_vector(kernel, "shift", shift, f.n);
  check_shifts(kernel, shift);
  std::optional<py::array_t<int32_t, py::array::c_style>> bias;
  if (!bias_h.is_none()) {
    bias = typed<int32_t>(kernel, "bias", bias_h, 1);
    check_vector(kernel, "bias", *bias, f.n);
  }
  k::cmsis_nn_conv_params p;
  p.input_offset = i32(kernel, "input_offset", input_offset, -127, 128);
  p.output_offset = i32(kernel, "output_offset", output_offset, -128, 127);
  p.stride = tile(kernel, "stride", stride, 1);
  p.padding = tile(kernel, "padding", padding, 0);
  p.dilation = tile(kernel, "dilation", dilation, 1);
  p.activation = activation(kernel, act);
  const k::cmsis_nn_dims out = output_dims_for(kernel, in, f.n, f.h, f.w, p.stride, p.padding, p.dilation, output_shape);
  const k::cmsis_nn_dims bias_dims{1, 1, 1, f.n};

  const int32_t need = getter(&p, &in, &f, &out);
  Scratch scratch(kernel, need, buffer_size);
  k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(mult.data()), const_cast<int32_t*>(shift.data())};
  py::array_t<int8_t> output({static_cast<py::ssize_t>(out.n), static_cast<py::ssize_t>(out.h),
                              static_cast<py::ssize_t>(out.w), static_cast<py::ssize_t>(out.c)});
  const k::arm_cmsis_nn_status st = fn(&scratch.ctx, &p, &q, &in, input.data(), &f, filter.data(), &bias_dims,
                                       bias ? bias->data() : nullptr, &out, output.mutable_data());
  check_status(st, kernel, std::string(path_rule) + "; " + ctx_hint(scratch, need));
  return output;
}

// ---- depthwise family ---------------------------------------------------------------------------------

using DwFn = k::arm_cmsis_nn_status (*)(const k::cmsis_nn_context*, const k::cmsis_nn_dw_conv_params*,
                                        const k::cmsis_nn_per_channel_quant_params*, const k::cmsis_nn_dims*,
                                        const int8_t*, const k::cmsis_nn_dims*, const int8_t*, const k::cmsis_nn_dims*,
                                        const int32_t*, const k::cmsis_nn_dims*, int8_t*);
using DwGetter = int32_t (*)(const k::cmsis_nn_dw_conv_params*, const k::cmsis_nn_dims*, const k::cmsis_nn_dims*,
                             const k::cmsis_nn_dims*);

py::array_t<int8_t> run_dw(const std::string& kernel, DwFn fn, DwGetter getter, const char* path_rule,
                           const py::handle& input_h, const py::handle& filter_h, const py::handle& bias_h,
                           const py::handle& mult_h, const py::handle& shift_h, int64_t input_offset,
                           int64_t output_offset, const HW& stride, const HW& padding, const HW& dilation,
                           const HW& act, const std::optional<HW>& output_shape, std::optional<int64_t> buffer_size) {
  const auto input = typed<int8_t>(kernel, "input", input_h, 4);
  const auto filter = typed<int8_t>(kernel, "filter", filter_h, 4);
  const k::cmsis_nn_dims in{dim(input, 0), dim(input, 1), dim(input, 2), dim(input, 3)};
  const k::cmsis_nn_dims f{dim(filter, 0), dim(filter, 1), dim(filter, 2), dim(filter, 3)};
  if (f.n != 1) fail(kernel, "filter", "must have shape (1, KH, KW, C_out), got " + shape_str(filter));
  if (f.c % in.c != 0) {
    fail(kernel, "filter", "output channels (" + std::to_string(f.c) + ") must be a multiple of the input's " +
                               std::to_string(in.c) + " channels");
  }
  const auto mult = typed<int32_t>(kernel, "multiplier", mult_h, 1);
  const auto shift = typed<int32_t>(kernel, "shift", shift_h, 1);
  check_vector(kernel, "multiplier", mult, f.c);
  check_vector(kernel, "shift", shift, f.c);
  check_shifts(kernel, shift);
  std::optional<py::array_t<int32_t, py::array::c_style>> bias;
  if (!bias_h.is_none()) {
    bias = typed<int32_t>(kernel, "bias", bias_h, 1);
    check_vector(kernel, "bias", *bias, f.c);
  }
  k::cmsis_nn_dw_conv_params p;
  p.input_offset = i32(kernel, "input_offset", input_offset, -127, 128);
  p.output_offset = i32(kernel, "output_offset", output_offset, -128, 127);
  p.ch_mult = f.c / in.c;
  p.stride = tile(kernel, "stride", stride, 1);
  p.padding = tile(kernel, "padding", padding, 0);
  p.dilation = tile(kernel, "dilation", dilation, 1);
  p.activation = activation(kernel, act);
  const k::cmsis_nn_dims out = output_dims_for(kernel, in, f.c, f.h, f.w, p.stride, p.padding, p.dilation, output_shape);
  const k::cmsis_nn_dims bias_dims{1, 1, 1, f.c};

  const int32_t need = getter(&p, &in, &f, &out);
  Scratch scratch(kernel, need, buffer_size);
  k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(mult.data()), const_cast<int32_t*>(shift.data())};
  py::array_t<int8_t> output({static_cast<py::ssize_t>(out.n), static_cast<py::ssize_t>(out.h),
                              static_cast<py::ssize_t>(out.w), static_cast<py::ssize_t>(out.c)});
  const k::arm_cmsis_nn_status st = fn(&scratch.ctx, &p, &q, &in, input.data(), &f, filter.data(), &bias_dims,
                                       bias ? bias->data() : nullptr, &out, output.mutable_data());
  check_status(st, kernel, std::string(path_rule) + "; " + ctx_hint(scratch, need));
  return output;
}

// Getters with the conv / depthwise wrapper-getter signature (DSP sizes).
int32_t conv_generic_size(const k::cmsis_nn_conv_params*, const k::cmsis_nn_dims* in, const k::cmsis_nn_dims* f,
                          const k::cmsis_nn_dims*) {
  return k::arm_convolve_s8_get_buffer_size(in, f);
}
int32_t conv_1x1_fast_size(const k::cmsis_nn_conv_params*, const k::cmsis_nn_dims* in, const k::cmsis_nn_dims*,
                           const k::cmsis_nn_dims*) {
  return k::arm_convolve_1x1_s8_fast_get_buffer_size_dsp(in);
}
int32_t no_conv_buffer(const k::cmsis_nn_conv_params*, const k::cmsis_nn_dims*, const k::cmsis_nn_dims*,
                       const k::cmsis_nn_dims*) {
  return 0;
}
int32_t dw_opt_size(const k::cmsis_nn_dw_conv_params*, const k::cmsis_nn_dims* in, const k::cmsis_nn_dims* f,
                    const k::cmsis_nn_dims*) {
  return k::arm_depthwise_conv_s8_opt_get_buffer_size_dsp(in, f);
}
int32_t no_dw_buffer(const k::cmsis_nn_dw_conv_params*, const k::cmsis_nn_dims*, const k::cmsis_nn_dims*,
                     const k::cmsis_nn_dims*) {
  return 0;
}

// ---- fully connected ----------------------------------------------------------------------------------

struct FcArgs {
  py::array_t<int8_t, py::array::c_style> input, filter;
  std::optional<py::array_t<int32_t, py::array::c_style>> bias;
  k::cmsis_nn_dims in{}, f{}, out{}, bias_dims{};
  k::cmsis_nn_fc_params p{};
};

FcArgs fc_args(const std::string& kernel, const py::handle& input_h, const py::handle& filter_h,
               const py::handle& bias_h, int64_t input_offset, int64_t filter_offset, int64_t output_offset,
               const HW& act) {
  FcArgs a;
  a.input = typed<int8_t>(kernel, "input", input_h, -1);
  a.filter = typed<int8_t>(kernel, "filter", filter_h, 2);
  if (a.input.ndim() < 1) fail(kernel, "input", "must have at least one dimension");
  const int32_t batches = a.input.ndim() == 1 ? 1 : dim(a.input, 0);
  const int32_t depth = static_cast<int32_t>(a.input.size() / batches);
  const int32_t c_out = dim(a.filter, 0);
  if (dim(a.filter, 1) != depth) {
    fail(kernel, "filter", "must have shape (C_out, " + std::to_string(depth) + ") for input " +
                               shape_str(a.input) + ", got " + shape_str(a.filter));
  }
  if (!bias_h.is_none()) {
    a.bias = typed<int32_t>(kernel, "bias", bias_h, 1);
    check_vector(kernel, "bias", *a.bias, c_out);
  }
  if (int64_t{batches} * c_out > std::numeric_limits<int32_t>::max()) fail(kernel, "filter", "output too large");
  a.in = {batches, 1, 1, depth};
  a.f = {depth, 1, 1, c_out};
  a.out = {batches, 1, 1, c_out};
  a.bias_dims = {1, 1, 1, c_out};
  a.p.input_offset = i32(kernel, "input_offset", input_offset, -127, 128);
  a.p.filter_offset = i32(kernel, "filter_offset", filter_offset, -127, 128);
  a.p.output_offset = i32(kernel, "output_offset", output_offset, -128, 127);
  a.p.activation = activation(kernel, act);
  return a;
}

py::array_t<int8_t> fc_output(const FcArgs& a) {
  if (a.input.ndim() == 1) return py::array_t<int8_t>(static_cast<py::ssize_t>(a.out.c));
  return py::array_t<int8_t>({static_cast<py::ssize_t>(a.out.n), static_cast<py::ssize_t>(a.out.c)});
}

// ---- pooling ------------------------------------------------------------------------------------------

using PoolFn = k::arm_cmsis_nn_status (*)(const k::cmsis_nn_context*, const k::cmsis_nn_pool_params*,
                                          const k::cmsis_nn_dims*, const int8_t*, const k::cmsis_nn_dims*,
                                          const k::cmsis_nn_dims*, int8_t*);

py::array_t<int8_t> run_pool(const std::string& kernel, PoolFn fn, bool avg, const py::handle& input_h,
                             const HW& filter_shape, const HW& stride, const HW& padding, const HW& act,
                             const std::optional<HW>& output_shape, std::optional<int64_t> buffer_size) {
  const auto input = typed<int8_t>(kernel, "input", input_h, 4);
  const k::cmsis_nn_dims in{dim(input, 0), dim(input, 1), dim(input, 2), dim(input, 3)};
  k::cmsis_nn_pool_params p;
  p.stride = tile(kernel, "stride", stride, 1);
  p.padding = tile(kernel, "padding", padding, 0);
  p.activation = activation(kernel, act);
  const k::cmsis_nn_tile ft = tile(kernel, "filter_shape", filter_shape, 1);
  const k::cmsis_nn_dims f{1, ft.h, ft.w, 1};
  const k::cmsis_nn_tile one{1, 1};
  const k::cmsis_nn_dims out = output_dims_for(kernel, in, in.c, f.h, f.w, p.stride, p.padding, one, output_shape);
  const int32_t need = avg ? k::arm_avgpool_s8_get_buffer_size_dsp(out.w, in.c) : 0;
  Scratch scratch(kernel, need, buffer_size);
  py::array_t<int8_t> output({static_cast<py::ssize_t>(out.n), static_cast<py::ssize_t>(out.h),
                              static_cast<py::ssize_t>(out.w), static_cast<py::ssize_t>(out.c)});
  const k::arm_cmsis_nn_status st = fn(&scratch.ctx, &p, &in, input.data(), &f, &out, output.mutable_data());
  check_status(st, kernel,
               "every pooling window must hold at least one input element (check output_shape, stride, "
               "padding); " + ctx_hint(scratch, need));
  return output;
}

// ---- elementwise support arithmetic (for tests) --------------------------------------------------------

template <class F>
py::array_t<int32_t> map2(const std::string& name, const py::handle& a_h, const py::handle& b_h, F f) {
  const auto a = typed<int32_t>(name, "a", a_h, -1);
  const auto b = typed<int32_t>(name, "b", b_h, -1);
  if (a.ndim() != b.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), b.shape())) {
    fail(name, "b", "must have the shape of 'a' " + shape_str(a) + ", got " + shape_str(b));
  }
  py::array_t<int32_t> r(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  int32_t* o = r.mutable_data();
  for (py::ssize_t i = 0; i < a.size(); ++i) o[i] = f(a.data()[i], b.data()[i]);
  return r;
}

// ---- LSTM ---------------------------------------------------------------------------------------------

using MS = std::pair<int64_t, int64_t>;  // (multiplier, shift)

void lstm_quant(const std::string& kernel, const std::string& arg, const MS& q, int32_t* m, int32_t* s) {
  *m = i32(kernel, arg + "[0] (multiplier)", q.first, 0, std::numeric_limits<int32_t>::max());
  *s = i32(kernel, arg + "[1] (shift)", q.second, -31, 30);
}

// (4, n) / (4,) int32 per-gate arrays and (4, H, K) int8 weights, gates in the order input, forget, cell, output.
void check_gate_shape(const std::string& kernel, const std::string& arg, const py::array& a,
                      const std::vector<py::ssize_t>& want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(static_cast<py::ssize_t>(i)) == want[i];
  if (!ok) {
    std::string w = "(";
    for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
    fail(kernel, arg, "must have shape " + w + (want.size() == 1 ? ",)" : ")") + ", got " + shape_str(a));
  }
}

}  // namespace

void bind_kernels(py::module_& parent) {
  py::module_ m = parent.def_submodule(
      "kernels",
      "CMSIS-NN-equivalent s8 kernels on numpy arrays (NHWC activations, OHWI conv filters, 1HWC depthwise "
      "filters, [C_out, K] FC weights; (h, w) tuples). Bad arguments and non-success kernel statuses raise "
      "ValueError.");

  const HW one{1, 1}, zero{0, 0}, full{-128, 127};

  struct ConvEntry {
    const char* py_name;
    const char* kernel;
    ConvFn fn;
    ConvGetter getter;
    const char* rule;
  };
  static const ConvEntry convs[] = {
      {"convolve_s8", "arm_convolve_s8", &k::arm_convolve_s8, &conv_generic_size,
       "the generic conv needs a scratch buffer"},
      {"convolve_1x1_s8_fast", "arm_convolve_1x1_s8_fast", &k::arm_convolve_1x1_s8_fast, &conv_1x1_fast_size,
       "argument 'filter'/'padding'/'stride'/'dilation': this kernel needs a 1x1 ungrouped filter, no padding, "
       "stride 1, dilation 1 and output_shape equal to the input's"},
      {"convolve_1x1_s8", "arm_convolve_1x1_s8", &k::arm_convolve_1x1_s8, &no_conv_buffer,
       "argument 'filter'/'padding'/'dilation'/'output_shape': this kernel needs a 1x1 ungrouped filter, no "
       "padding, dilation 1 and outputs that read input pixels"},
      {"convolve_1_x_n_s8", "arm_convolve_1_x_n_s8", &k::arm_convolve_1_x_n_s8, &k::arm_convolve_1_x_n_s8_get_buffer_size,
       "argument 'input'/'filter'/'dilation': this kernel needs input H = 1, filter H = 1, dilation_w = 1, and a "
       "scratch buffer"},
      {"convolve_wrapper_s8", "arm_convolve_wrapper_s8", &k::arm_convolve_wrapper_s8,
       &k::arm_convolve_wrapper_s8_get_buffer_size_dsp, "the dispatched conv kernel rejected its arguments"},
  };
  for (const ConvEntry& e : convs) {
    const ConvEntry* entry = &e;
    m.def(
        e.py_name,
        [entry](const py::handle& input, const py::handle& filter, const py::handle& bias, const py::handle& multiplier,
                const py::handle& shift, int64_t input_offset, int64_t output_offset, HW stride, HW padding,
                HW dilation, HW act, std::optional<HW> output_shape, std::optional<int64_t> buffer_size) {
          return run_conv(entry->kernel, entry->fn, entry->getter, entry->rule, input, filter, bias, multiplier, shift,
                          input_offset, output_offset, stride, padding, dilation, act, output_shape, buffer_size);
        },
        py::arg("input"), py::arg("filter"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::kw_only(),
        py::arg("input_offset"), py::arg("output_offset"), py::arg("stride") = one, py::arg("padding") = zero,
        py::arg("dilation") = one, py::arg("activation") = full, py::arg("output_shape") = py::none(),
        py::arg("buffer_size") = py::none(),
        (std::string(e.kernel) + ": input (N,H,W,C_in) int8, filter (C_out,KH,KW,C_in/groups) int8, bias (C_out,) "
                                 "int32 or None, multiplier/shift (C_out,) int32; padding is the top/left pad (the "
                                 "bottom/right pad is implied by output_shape). Returns (N,H_out,W_out,C_out) int8.")
            .c_str());
  }

  struct DwEntry {
    const char* py_name;
    const char* kernel;
    DwFn fn;
    DwGetter getter;
    const char* rule;
  };
  static const DwEntry dws[] = {
      {"depthwise_conv_s8", "arm_depthwise_conv_s8", &k::arm_depthwise_conv_s8, &no_dw_buffer,
       "the generic depthwise kernel rejected its arguments"},
      {"depthwise_conv_s8_opt", "arm_depthwise_conv_s8_opt", &k::arm_depthwise_conv_s8_opt, &dw_opt_size,
       "argument 'filter'/'dilation': this kernel needs channel multiplier 1 and dilation 1"},
      {"depthwise_conv_3x3_s8", "arm_depthwise_conv_3x3_s8", &k::arm_depthwise_conv_3x3_s8, &no_dw_buffer,
       "argument 'filter'/'padding'/'dilation': this kernel needs a 3x3 filter, channel multiplier 1, dilation 1 "
       "and padding <= 1"},
      {"depthwise_conv_wrapper_s8", "arm_depthwise_conv_wrapper_s8", &k::arm_depthwise_conv_wrapper_s8,
       &k::arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp, "the dispatched depthwise kernel rejected its arguments"},
  };
  for (const DwEntry& e : dws) {
    const DwEntry* entry = &e;
    m.def(
        e.py_name,
        [entry](const py::handle& input, const py::handle& filter, const py::handle& bias, const py::handle& multiplier,
                const py::handle& shift, int64_t input_offset, int64_t output_offset, HW stride, HW padding,
                HW dilation, HW act, std::optional<HW> output_shape, std::optional<int64_t> buffer_size) {
          return run_dw(entry->kernel, entry->fn, entry->getter, entry->rule, input, filter, bias, multiplier, shift,
                        input_offset, output_offset, stride, padding, dilation, act, output_shape, buffer_size);
        },
        py::arg("input"), py::arg("filter"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::kw_only(),
        py::arg("input_offset"), py::arg("output_offset"), py::arg("stride") = one, py::arg("padding") = zero,
        py::arg("dilation") = one, py::arg("activation") = full, py::arg("output_shape") = py::none(),
        py::arg("buffer_size") = py::none(),
        (std::string(e.kernel) + ": input (N,H,W,C_in) int8, filter (1,KH,KW,C_in*ch_mult) int8, bias (C_out,) int32 "
                                 "or None, multiplier/shift (C_out,) int32. Returns (N,H_out,W_out,C_out) int8.")
            .c_str());
  }

  m.def(
      "fully_connected_s8",
      [](const py::handle& input, const py::handle& filter, const py::handle& bias, int64_t multiplier, int64_t shift,
         int64_t input_offset, int64_t filter_offset, int64_t output_offset, HW act) {
        const std::string kernel = "arm_fully_connected_s8";
        FcArgs a = fc_args(kernel, input, filter, bias, input_offset, filter_offset, output_offset, act);
        const k::cmsis_nn_per_tensor_quant_params q{
            i32(kernel, "multiplier", multiplier, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()),
            i32(kernel, "shift", shift, -31, 30)};
        Scratch scratch(kernel, k::arm_fully_connected_s8_get_buffer_size_dsp(&a.f), std::nullopt);
        auto output = fc_output(a);
        check_status(k::arm_fully_connected_s8(&scratch.ctx, &a.p, &q, &a.in, a.input.data(), &a.f, a.filter.data(),
                                               &a.bias_dims, a.bias ? a.bias->data() : nullptr, &a.out,
                                               output.mutable_data()),
                     kernel, "argument 'input'/'filter' rejected");
        return output;
      },
      py::arg("input"), py::arg("filter"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::kw_only(),
      py::arg("input_offset"), py::arg("filter_offset") = 0, py::arg("output_offset"), py::arg("activation") = full,
      "arm_fully_connected_s8 (per-tensor): input (N, ...) int8 flattened to (N, K), filter (C_out, K) int8, bias "
      "(C_out,) int32 or None, scalar multiplier/shift. Returns (N, C_out) int8.");

  m.def(
      "fully_connected_per_channel_s8",
      [](const py::handle& input, const py::handle& filter, const py::handle& bias, const py::handle& multiplier,
         const py::handle& shift, int64_t input_offset, int64_t filter_offset, int64_t output_offset, HW act) {
        const std::string kernel = "arm_fully_connected_per_channel_s8";
        FcArgs a = fc_args(kernel, input, filter, bias, input_offset, filter_offset, output_offset, act);
        const auto mult = typed<int32_t>(kernel, "multiplier", multiplier, 1);
        const auto sh = typed<int32_t>(kernel, "shift", shift, 1);
        check_vector(kernel, "multiplier", mult, a.out.c);
        check_vector(kernel, "shift", sh, a.out.c);
        check_shifts(kernel, sh);
        const k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(mult.data()), const_cast<int32_t*>(sh.data())};
        Scratch scratch(kernel, k::arm_fully_connected_s8_get_buffer_size_dsp(&a.f), std::nullopt);
        auto output = fc_output(a);
        check_status(k::arm_fully_connected_per_channel_s8(&scratch.ctx, &a.p, &q, &a.in, a.input.data(), &a.f,
                                                           a.filter.data(), &a.bias_dims,
                                                           a.bias ? a.bias->data() : nullptr, &a.out,
                                                           output.mutable_data()),
                     kernel, "argument 'input'/'filter' rejected");
        return output;
      },
      py::arg("input"), py::arg("filter"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::kw_only(),
      py::arg("input_offset"), py::arg("filter_offset") = 0, py::arg("output_offset"), py::arg("activation") = full,
      "arm_fully_connected_per_channel_s8: as fully_connected_s8 with (C_out,) int32 multiplier/shift.");

  m.def(
      "fully_connected_wrapper_s8",
      [](const py::handle& input, const py::handle& filter, const py::handle& bias, const py::handle& multiplier,
         const py::handle& shift, bool per_channel, int64_t input_offset, int64_t filter_offset, int64_t output_offset,
         HW act) {
        const std::string kernel = "arm_fully_connected_wrapper_s8";
        FcArgs a = fc_args(kernel, input, filter, bias, input_offset, filter_offset, output_offset, act);
        const auto mult = typed<int32_t>(kernel, "multiplier", multiplier, 1);
        const auto sh = typed<int32_t>(kernel, "shift", shift, 1);
        const int32_t n = per_channel ? a.out.c : 1;
        check_vector(kernel, "multiplier", mult, n);
        check_vector(kernel, "shift", sh, n);
        check_shifts(kernel, sh);
        const k::cmsis_nn_quant_params q{const_cast<int32_t*>(mult.data()), const_cast<int32_t*>(sh.data()),
                                         per_channel ? 1 : 0};
        Scratch scratch(kernel, k::arm_fully_connected_s8_get_buffer_size_dsp(&a.f), std::nullopt);
        auto output = fc_output(a);
        check_status(k::arm_fully_connected_wrapper_s8(&scratch.ctx, &a.p, &q, &a.in, a.input.data(), &a.f,
                                                       a.filter.data(), &a.bias_dims, a.bias ? a.bias->data() : nullptr,
                                                       &a.out, output.mutable_data()),
                     kernel, "argument 'input'/'filter' rejected");
        return output;
      },
      py::arg("input"), py::arg("filter"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::kw_only(),
      py::arg("per_channel"), py::arg("input_offset"), py::arg("filter_offset") = 0, py::arg("output_offset"),
      py::arg("activation") = full,
      "arm_fully_connected_wrapper_s8: multiplier/shift of shape (C_out,) if per_channel else (1,).");

  m.def(
      "max_pool_s8",
      [](const py::handle& input, HW filter_shape, HW stride, HW padding, HW act, std::optional<HW> output_shape) {
        return run_pool("arm_max_pool_s8", &k::arm_max_pool_s8, false, input, filter_shape, stride, padding, act,
                        output_shape, std::nullopt);
      },
      py::arg("input"), py::kw_only(), py::arg("filter_shape"), py::arg("stride") = one, py::arg("padding") = zero,
      py::arg("activation") = full, py::arg("output_shape") = py::none(),
      "arm_max_pool_s8: input (N,H,W,C) int8; returns (N,H_out,W_out,C) int8.");
  m.def(
      "avgpool_s8",
      [](const py::handle& input, HW filter_shape, HW stride, HW padding, HW act, std::optional<HW> output_shape,
         std::optional<int64_t> buffer_size) {
        return run_pool("arm_avgpool_s8", &k::arm_avgpool_s8, true, input, filter_shape, stride, padding, act,
                        output_shape, buffer_size);
      },
      py::arg("input"), py::kw_only(), py::arg("filter_shape"), py::arg("stride") = one, py::arg("padding") = zero,
      py::arg("activation") = full, py::arg("output_shape") = py::none(), py::arg("buffer_size") = py::none(),
      "arm_avgpool_s8: input (N,H,W,C) int8 (scratch: the DSP 4*C bytes); returns (N,H_out,W_out,C) int8.");

  m.def(
      "elementwise_add_s8",
      [](const py::handle& input_1, const py::handle& input_2, int64_t input_1_offset, int64_t input_1_mult,
         int64_t input_1_shift, int64_t input_2_offset, int64_t input_2_mult, int64_t input_2_shift,
         int64_t left_shift, int64_t out_offset, int64_t out_mult, int64_t out_shift, HW act) {
        const std::string kernel = "arm_elementwise_add_s8";
        const auto a = typed<int8_t>(kernel, "input_1", input_1, -1);
        const auto b = typed<int8_t>(kernel, "input_2", input_2, -1);
        if (a.ndim() != b.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), b.shape())) {
          fail(kernel, "input_2", "must have the shape of input_1 " + shape_str(a) + ", got " + shape_str(b));
        }
        constexpr int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
        const k::cmsis_nn_activation r = activation(kernel, act);
        py::array_t<int8_t> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        check_status(
            k::arm_elementwise_add_s8(a.data(), b.data(), i32(kernel, "input_1_offset", input_1_offset, -127, 128),
                                      i32(kernel, "input_1_mult", input_1_mult, lo, hi),
                                      i32(kernel, "input_1_shift", input_1_shift, -31, 30),
                                      i32(kernel, "input_2_offset", input_2_offset, -127, 128),
                                      i32(kernel, "input_2_mult", input_2_mult, lo, hi),
                                      i32(kernel, "input_2_shift", input_2_shift, -31, 30),
                                      i32(kernel, "left_shift", left_shift, 0, 22), out.mutable_data(),
                                      i32(kernel, "out_offset", out_offset, -128, 127),
                                      i32(kernel, "out_mult", out_mult, lo, hi),
                                      i32(kernel, "out_shift", out_shift, -31, 30), r.min, r.max,
                                      static_cast<int32_t>(a.size())),
            kernel, "arguments rejected");
        return out;
      },
      py::arg("input_1"), py::arg("input_2"), py::kw_only(), py::arg("input_1_offset"), py::arg("input_1_mult"),
      py::arg("input_1_shift"), py::arg("input_2_offset"), py::arg("input_2_mult"), py::arg("input_2_shift"),
      py::arg("left_shift"), py::arg("out_offset"), py::arg("out_mult"), py::arg("out_shift"),
      py::arg("activation") = full, "arm_elementwise_add_s8 on two same-shape int8 arrays.");

  m.def(
      "softmax_s8",
      [](const py::handle& input, int64_t mult, int64_t shift, int64_t diff_min) {
        const std::string kernel = "arm_softmax_s8";
        const auto a = typed<int8_t>(kernel, "input", input, -1);
        if (a.ndim() < 1) fail(kernel, "input", "must have at least one dimension");
        const int32_t row = dim(a, a.ndim() - 1);
        py::array_t<int8_t> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        check_status(k::arm_softmax_s8(a.data(), static_cast<int32_t>(a.size() / row), row,
                                       i32(kernel, "mult", mult, std::numeric_limits<int32_t>::min(),
                                           std::numeric_limits<int32_t>::max()),
                                       i32(kernel, "shift", shift, 0, 31),
                                       i32(kernel, "diff_min", diff_min, std::numeric_limits<int32_t>::min(), 0),
                                       out.mutable_data()),
                     kernel, "arguments rejected");
        return out;
      },
      py::arg("input"), py::kw_only(), py::arg("mult"), py::arg("shift"), py::arg("diff_min"),
      "arm_softmax_s8 over the last axis; output scale 1/256, zero point -128.");

  m.def(
      "clamp_s8",
      [](const py::handle& input, int64_t input_offset, int64_t output_offset, int64_t mult, int64_t shift, HW act) {
        const std::string kernel = "arm_clamp_s8";
        const auto a = typed<int8_t>(kernel, "input", input, -1);
        const k::cmsis_nn_activation r = activation(kernel, act);
        py::array_t<int8_t> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        check_status(k::arm_clamp_s8(a.data(), out.mutable_data(), static_cast<int32_t>(a.size()),
                                     i32(kernel, "input_offset", input_offset, -127, 128),
                                     i32(kernel, "output_offset", output_offset, -128, 127),
                                     i32(kernel, "mult", mult, std::numeric_limits<int32_t>::min(),
                                         std::numeric_limits<int32_t>::max()),
                                     i32(kernel, "shift", shift, -31, 30), r.min, r.max),
                     kernel, "arguments rejected");
        return out;
      },
      py::arg("input"), py::kw_only(), py::arg("input_offset") = 0, py::arg("output_offset") = 0,
      py::arg("mult") = int64_t{1} << 30, py::arg("shift") = 1, py::arg("activation") = full,
      "arm_clamp_s8: standalone requantize + clamp (TFLM's int8 RELU/RELU6 op); the defaults are the identity "
      "requantization, i.e. a plain clamp.");

  // ---- support arithmetic (elementwise on same-shape int32 arrays) ----
  m.def(
      "requantize",
      [](const py::handle& val, const py::handle& mult, const py::handle& shift) {
        const auto s = typed<int32_t>("requantize", "shift", shift, -1);
        check_shifts("requantize", s);
        const auto v = typed<int32_t>("requantize", "val", val, -1);
        const auto m2 = typed<int32_t>("requantize", "mult", mult, -1);
        if (s.ndim() != v.ndim() || !std::equal(v.shape(), v.shape() + v.ndim(), s.shape()) ||
            m2.ndim() != v.ndim() || !std::equal(v.shape(), v.shape() + v.ndim(), m2.shape())) {
          fail("requantize", "mult/shift", "must have the shape of 'val' " + shape_str(v));
        }
        py::array_t<int32_t> r(std::vector<py::ssize_t>(v.shape(), v.shape() + v.ndim()));
        int32_t* o = r.mutable_data();
        for (py::ssize_t i = 0; i < v.size(); ++i) o[i] = k::arm_nn_requantize(v.data()[i], m2.data()[i], s.data()[i]);
        return r;
      },
      py::arg("val"), py::arg("mult"), py::arg("shift"), "arm_nn_requantize (double rounding), elementwise.");
  m.def(
      "doubling_high_mult",
      [](const py::handle& a, const py::handle& b) {
        return map2("doubling_high_mult", a, b, [](int32_t x, int32_t y) { return k::arm_nn_doubling_high_mult(x, y); });
      },
      py::arg("a"), py::arg("b"), "Saturating rounding doubling high multiply, elementwise.");
  m.def(
      "doubling_high_mult_no_sat",
      [](const py::handle& a, const py::handle& b) {
        return map2("doubling_high_mult_no_sat", a, b,
                    [](int32_t x, int32_t y) { return k::arm_nn_doubling_high_mult_no_sat(x, y); });
      },
      py::arg("a"), py::arg("b"), "Rounding doubling high multiply without saturation, elementwise.");
  m.def(
      "divide_by_power_of_two",
      [](const py::handle& x, const py::handle& e) {
        const auto ev = typed<int32_t>("divide_by_power_of_two", "b", e, -1);
        for (py::ssize_t i = 0; i < ev.size(); ++i) {
          if (ev.data()[i] < 0 || ev.data()[i] > 31) fail("divide_by_power_of_two", "exponent", "must be in [0, 31]");
        }
        return map2("divide_by_power_of_two", x, e,
                    [](int32_t v, int32_t s) { return k::arm_nn_divide_by_power_of_two(v, s); });
      },
      py::arg("x"), py::arg("exponent"), "Rounding (half away from zero) division by 2^exponent, elementwise.");
  m.def(
      "exp_on_negative_values",
      [](const py::handle& a, int64_t int_bits) {
        const int32_t ib = i32("exp_on_negative_values", "int_bits", int_bits, 1, 29);
        const auto v = typed<int32_t>("exp_on_negative_values", "a", a, -1);
        py::array_t<int32_t> r(std::vector<py::ssize_t>(v.shape(), v.shape() + v.ndim()));
        for (py::ssize_t i = 0; i < v.size(); ++i) {
          if (v.data()[i] > 0) fail("exp_on_negative_values", "a", "values must be <= 0");
          r.mutable_data()[i] = k::arm_nn_exp_on_negative_values(v.data()[i], ib);
        }
        return r;
      },
      py::arg("a"), py::arg("int_bits") = 5, "exp of Q(int_bits) values <= 0, result in Q0.31, elementwise.");
  m.def(
      "one_over_one_plus_x_for_x_in_0_1",
      [](const py::handle& a) {
        const auto v = typed<int32_t>("one_over_one_plus_x_for_x_in_0_1", "a", a, -1);
        py::array_t<int32_t> r(std::vector<py::ssize_t>(v.shape(), v.shape() + v.ndim()));
        for (py::ssize_t i = 0; i < v.size(); ++i) {
          if (v.data()[i] < 0) fail("one_over_one_plus_x_for_x_in_0_1", "a", "values must be >= 0");
          r.mutable_data()[i] = k::arm_nn_one_over_one_plus_x_for_x_in_0_1(v.data()[i]);
        }
        return r;
      },
      py::arg("a"), "1/(1+x) for x in [0, 1) in Q0.31, elementwise.");

  m.def(
      "lstm_unidirectional_s8",
      [](const py::handle& input_h, const py::handle& input_weights_h, const py::handle& hidden_weights_h,
         const py::handle& input_bias_h, const py::handle& hidden_bias_h, const py::handle& input_mult_h,
         const py::handle& input_shift_h, const py::handle& hidden_mult_h, const py::handle& hidden_shift_h,
         int64_t input_offset, int64_t output_offset, MS forget_to_cell, MS input_to_cell, MS output_quant,
         int64_t cell_scale_power, int64_t cell_clip, bool time_major) {
        const std::string kernel = "arm_lstm_unidirectional_s8";
        const auto input = typed<int8_t>(kernel, "input", input_h, 3);
        const auto w_in = typed<int8_t>(kernel, "input_weights", input_weights_h, 3);
        const auto w_h = typed<int8_t>(kernel, "hidden_weights", hidden_weights_h, 3);
        const auto eb_in = typed<int32_t>(kernel, "input_effective_bias", input_bias_h, 2);
        const auto eb_h = typed<int32_t>(kernel, "hidden_effective_bias", hidden_bias_h, 2);
        const auto m_in = typed<int32_t>(kernel, "input_multiplier", input_mult_h, 1);
        const auto s_in = typed<int32_t>(kernel, "input_shift", input_shift_h, 1);
        const auto m_h = typed<int32_t>(kernel, "hidden_multiplier", hidden_mult_h, 1);
        const auto s_h = typed<int32_t>(kernel, "hidden_shift", hidden_shift_h, 1);
        const int32_t in_size = dim(input, 2);
        const int32_t hidden = dim(w_in, 1);
        if (hidden > 65536 || in_size > 65536) fail(kernel, "input_weights", "hidden and input sizes must be <= 65536");
        check_gate_shape(kernel, "input_weights", w_in, {4, hidden, in_size});
        check_gate_shape(kernel, "hidden_weights", w_h, {4, hidden, hidden});
        check_gate_shape(kernel, "input_effective_bias", eb_in, {4, hidden});
        check_gate_shape(kernel, "hidden_effective_bias", eb_h, {4, hidden});
        check_gate_shape(kernel, "input_multiplier", m_in, {4});
        check_gate_shape(kernel, "input_shift", s_in, {4});
        check_gate_shape(kernel, "hidden_multiplier", m_h, {4});
        check_gate_shape(kernel, "hidden_shift", s_h, {4});
        for (int g = 0; g < 4; ++g) {
          if (m_in.data()[g] < 0) fail(kernel, "input_multiplier", "values must be >= 0");
          if (m_h.data()[g] < 0) fail(kernel, "hidden_multiplier", "values must be >= 0");
          if (s_in.data()[g] < -31 || s_in.data()[g] > 30) {
            fail(kernel, "input_shift", "values must be in [-31, 30], got " + std::to_string(s_in.data()[g]));
          }
          if (s_h.data()[g] < -31 || s_h.data()[g] > 30) {
            fail(kernel, "hidden_shift", "values must be in [-31, 30], got " + std::to_string(s_h.data()[g]));
          }
        }
        if (int64_t{dim(input, 0)} * dim(input, 1) * std::max(in_size, hidden) > std::numeric_limits<int32_t>::max()) {
          fail(kernel, "input", "is too large for int32 indexing");
        }
        k::cmsis_nn_lstm_params p{};
        p.time_major = time_major ? 1 : 0;
        p.batch_size = time_major ? dim(input, 1) : dim(input, 0);
        p.time_steps = time_major ? dim(input, 0) : dim(input, 1);
        p.input_size = in_size;
        p.hidden_size = hidden;
        p.input_offset = i32(kernel, "input_offset", input_offset, -127, 128);
        p.output_offset = i32(kernel, "output_offset", output_offset, -128, 127);
        lstm_quant(kernel, "forget_to_cell", forget_to_cell, &p.forget_to_cell_multiplier, &p.forget_to_cell_shift);
        lstm_quant(kernel, "input_to_cell", input_to_cell, &p.input_to_cell_multiplier, &p.input_to_cell_shift);
        lstm_quant(kernel, "output_quant", output_quant, &p.output_multiplier, &p.output_shift);
        p.cell_scale_power = i32(kernel, "cell_scale_power", cell_scale_power, -43, 18);
        p.cell_clip = i32(kernel, "cell_clip", cell_clip, 0, 32767);
        k::cmsis_nn_lstm_gate* gates[4] = {&p.input_gate, &p.forget_gate, &p.cell_gate, &p.output_gate};
        for (int g = 0; g < 4; ++g) {
          k::cmsis_nn_lstm_gate& gt = *gates[g];
          gt.input_multiplier = m_in.data()[g];
          gt.input_shift = s_in.data()[g];
          gt.input_weights = w_in.data() + static_cast<py::ssize_t>(g) * hidden * in_size;
          gt.input_effective_bias = eb_in.data() + static_cast<py::ssize_t>(g) * hidden;
          gt.hidden_multiplier = m_h.data()[g];
          gt.hidden_shift = s_h.data()[g];
          gt.hidden_weights = w_h.data() + static_cast<py::ssize_t>(g) * hidden * hidden;
          gt.hidden_effective_bias = eb_h.data() + static_cast<py::ssize_t>(g) * hidden;
          gt.activation_type = g == 2 ? k::ARM_TANH : k::ARM_SIGMOID;
        }
        const int32_t need = k::arm_lstm_unidirectional_s8_get_buffer_size(p.hidden_size, p.batch_size);
        Scratch scratch(kernel, need, std::nullopt);
        py::array_t<int8_t> output({input.shape(0), input.shape(1), static_cast<py::ssize_t>(hidden)});
        check_status(k::arm_lstm_unidirectional_s8(&scratch.ctx, input.data(), &p, output.mutable_data()), kernel,
                     "arguments rejected; " + ctx_hint(scratch, need));
        return output;
      },
      py::arg("input"), py::arg("input_weights"), py::arg("hidden_weights"), py::arg("input_effective_bias"),
      py::arg("hidden_effective_bias"), py::arg("input_multiplier"), py::arg("input_shift"),
      py::arg("hidden_multiplier"), py::arg("hidden_shift"), py::kw_only(), py::arg("input_offset"),
      py::arg("output_offset"), py::arg("forget_to_cell"), py::arg("input_to_cell"), py::arg("output_quant"),
      py::arg("cell_scale_power"), py::arg("cell_clip") = 0, py::arg("time_major") = false,
      "arm_lstm_unidirectional_s8 (TFLM 8x8->16 integer LSTM): input (B, T, I) int8 ((T, B, I) with "
      "time_major), weights (4, H, I) / (4, H, H) int8 and effective biases (4, H) int32 in gate order input, "
      "forget, cell, output; per-gate (4,) int32 multiplier/shift to Q3.12; (multiplier, shift) pairs "
      "forget_to_cell, input_to_cell, output_quant. Sigmoid gates, tanh cell gate. State starts at zero. "
      "Returns the hidden state of every step, shaped like input with H last.");
  m.def(
      "activation_s16",
      [](const py::handle& input_h, int64_t left_shift, const std::string& type) {
        const std::string kernel = "arm_nn_activation_s16";
        if (input_h.is_none() || !py::isinstance<py::array>(input_h)) fail(kernel, "input", "must be a numpy array");
        const py::array a = py::reinterpret_borrow<py::array>(input_h);
        if (!a.dtype().is(py::dtype::of<int16_t>())) {
          fail(kernel, "input", "must have dtype int16, got " + std::string(py::str(a.dtype())));
        }
        if (a.size() > std::numeric_limits<int32_t>::max()) fail(kernel, "input", "is too large for int32 indexing");
        if (type != "sigmoid" && type != "tanh") fail(kernel, "type", "must be 'sigmoid' or 'tanh', got '" + type + "'");
        const auto v = py::array_t<int16_t, py::array::c_style>::ensure(a);
        const int32_t ls = i32(kernel, "left_shift", left_shift, -31, 30);
        py::array_t<int16_t> r(std::vector<py::ssize_t>(v.shape(), v.shape() + v.ndim()));
        check_status(k::arm_nn_activation_s16(v.data(), r.mutable_data(), static_cast<int32_t>(v.size()), ls,
                                              type == "sigmoid" ? k::ARM_SIGMOID : k::ARM_TANH),
                     kernel, "arguments rejected");
        return r;
      },
      py::arg("input"), py::arg("left_shift") = 0, py::arg("type") = "sigmoid",
      "int16 sigmoid/tanh of TFLM's integer LSTM: Q3.12 input (left_shift 0) or scale 2^p (left_shift p + 12), "
      "Q0.15 output, elementwise.");
}
