// harcore._core: the op graph (enums, Tensor, Op, Graph), validate / infer_shape / propagate_shapes,
// (GraphError is harcore.errors.GraphError, a ValueError subclass, translated in module.cpp).
//
// Python may pass any integer: every integer field goes through a setter that turns a value outside the
// C++ type's range into ValueError; enum fields accept the enum or a plain int and keep unknown values,
// which `validate` then rejects with a GraphError naming the op and field.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace py = pybind11;
using namespace harcore;

namespace {

template <class T>
T to_int(py::handle h, const char* what) {
  static_assert(sizeof(T) <= sizeof(long long), "int width");
  if (PyBool_Check(h.ptr()) == 0 && PyLong_Check(h.ptr()) == 0 && !PyIndex_Check(h.ptr())) {
    throw py::type_error(std::string(what) + ": expected an int, got " + std::string(py::str(py::type::of(h))));
  }
  py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
  if (!idx) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || v < static_cast<long long>(std::numeric_limits<T>::min()) ||
      v > static_cast<long long>(std::numeric_limits<T>::max())) {
    throw py::value_error(std::string(what) + ": " + std::string(py::str(h)) + " is out of range for " +
                          (sizeof(T) == 8 ? "int64" : "int32"));
  }
  return static_cast<T>(v);
}

template <class T>
std::vector<T> to_int_vector(py::handle h, const char* what) {
  if (py::isinstance<py::str>(h) || py::isinstance<py::bytes>(h)) {
    throw py::type_error(std::string(what) + ": expected a sequence of ints");
  }
  std::vector<T> r;
  for (py::handle item : py::iter(h)) r.push_back(to_int<T>(item, what));
  return r;
}

template <size_t N>
std::array<int64_t, N> to_int_array(py::handle h, const char* what) {
  auto v = to_int_vector<int64_t>(h, what);
  if (v.size() != N) {
    throw py::value_error(std::string(what) + ": expected " + std::to_string(N) + " values, got " +
                          std::to_string(v.size()));
  }
  std::array<int64_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = v[i];
  return a;
}

template <class E>
E to_enum(py::handle h, const char* what) {
  if (py::isinstance<E>(h)) return h.cast<E>();
  return static_cast<E>(to_int<int32_t>(h, what));
}

template <size_t N>
py::tuple as_tuple(const std::array<int64_t, N>& a) {
  py::tuple t(N);
  for (size_t i = 0; i < N; ++i) t[i] = py::int_(a[i]);
  return t;
}

#define HC_INT_FIELD(cls, T, name)                                                                  \
  def_property(                                                                                      \
      #name, [](const cls& o) { return o.name; },                                                   \
      [](cls& o, py::handle v) { o.name = to_int<T>(v, #cls "." #name); })
#define HC_ARRAY_FIELD(cls, N, name)                                                                \
  def_property(                                                                                      \
      #name, [](const cls& o) { return as_tuple<N>(o.name); },                                      \
      [](cls& o, py::handle v) { o.name = to_int_array<N>(v, #cls "." #name); })
#define HC_VEC_FIELD(cls, T, name)                                                                  \
  def_property(                                                                                      \
      #name, [](const cls& o) { return o.name; },                                                   \
      [](cls& o, py::handle v) { o.name = to_int_vector<T>(v, #cls "." #name); })
#define HC_ENUM_FIELD(cls, E, name)                                                                 \
  def_property(                                                                                      \
      #name, [](const cls& o) { return o.name; },                                                   \
      [](cls& o, py::handle v) { o.name = to_enum<E>(v, #cls "." #name); })

}  // namespace

void bind_graph(py::module_& m) {
  py::enum_<OpKind>(m, "OpKind")
      .value("Input", OpKind::Input)
      .value("Conv", OpKind::Conv)
      .value("Linear", OpKind::Linear)
      .value("BatchNorm", OpKind::BatchNorm)
      .value("Activation", OpKind::Activation)
      .value("Pool", OpKind::Pool)
      .value("GlobalPool", OpKind::GlobalPool)
      .value("Add", OpKind::Add)
      .value("Mul", OpKind::Mul)
      .value("Concat", OpKind::Concat)
      .value("Reshape", OpKind::Reshape)
      .value("Transpose", OpKind::Transpose)
      .value("Slice", OpKind::Slice)
      .value("RNN", OpKind::RNN)
      .value("MatMul", OpKind::MatMul)
      .value("Softmax", OpKind::Softmax)
      .value("Mean", OpKind::Mean)
      .value("LayerNorm", OpKind::LayerNorm)
      .value("Gather", OpKind::Gather)
      .value("DFT", OpKind::DFT);
  py::enum_<ActKind>(m, "ActKind")
      .value("ReLU", ActKind::ReLU)
      .value("ReLU6", ActKind::ReLU6)
      .value("Sigmoid", ActKind::Sigmoid)
      .value("Tanh", ActKind::Tanh)
      .value("LeakyReLU", ActKind::LeakyReLU)
      .value("ELU", ActKind::ELU)
      .value("GELU", ActKind::GELU)
      .value("Hardtanh", ActKind::Hardtanh)
      .value("SiLU", ActKind::SiLU)
      .value("Identity", ActKind::Identity);
  py::enum_<PoolKind>(m, "PoolKind").value("Max", PoolKind::Max).value("Avg", PoolKind::Avg);
  py::enum_<RnnCell>(m, "RnnCell").value("LSTM", RnnCell::LSTM).value("GRU", RnnCell::GRU);

  m.def("op_kind_name", [](py::handle k) { return std::string(op_kind_name(to_enum<OpKind>(k, "kind"))); },
        py::arg("kind"));
  m.def("act_kind_name", [](py::handle k) { return std::string(act_kind_name(to_enum<ActKind>(k, "act"))); },
        py::arg("act"));

  py::class_<Tensor>(m, "Tensor")
      .def(py::init([](std::string name, py::handle shape) {
             Tensor t;
             t.name = std::move(name);
             t.shape = to_int_vector<int64_t>(shape, "Tensor.shape");
             return t;
           }),
           py::arg("name"), py::arg("shape"))
      .def_readwrite("name", &Tensor::name)
      .HC_VEC_FIELD(Tensor, int64_t, shape)
      .def_property_readonly("numel",
                             [](const Tensor& t) {
                               int64_t n = 1;
                               for (int64_t d : t.shape) {
                                 if (__builtin_mul_overflow(n, d, &n)) throw py::value_error("numel overflows int64");
                               }
                               return n;
                             })
      .def("__repr__", [](const Tensor& t) {
        std::string s = "Tensor('" + t.name + "', (";
        for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
        return s + "))";
      });

  py::class_<Op>(m, "Op")
      .def(py::init<>())
      .HC_ENUM_FIELD(Op, OpKind, kind)
      .def_readwrite("name", &Op::name)
      .HC_VEC_FIELD(Op, int32_t, inputs)
      .HC_INT_FIELD(Op, int32_t, output)
      .HC_INT_FIELD(Op, int64_t, in_channels)
      .HC_INT_FIELD(Op, int64_t, out_channels)
      .HC_INT_FIELD(Op, int64_t, groups)
      .def_readwrite("bias", &Op::bias)
      .HC_ARRAY_FIELD(Op, 2, kernel)
      .HC_ARRAY_FIELD(Op, 2, stride)
      .HC_ARRAY_FIELD(Op, 2, dilation)
      .HC_ARRAY_FIELD(Op, 4, pad)
      .def_readwrite("ceil_mode", &Op::ceil_mode)
      .def_readwrite("count_include_pad", &Op::count_include_pad)
      .HC_ENUM_FIELD(Op, ActKind, act)
      .HC_ENUM_FIELD(Op, PoolKind, pool)
      .HC_ENUM_FIELD(Op, RnnCell, cell)
      .def_readwrite("bidirectional", &Op::bidirectional)
      .HC_INT_FIELD(Op, int32_t, axis)
      .def_readwrite("keep_dims", &Op::keep_dims)
      .HC_INT_FIELD(Op, int64_t, start)
      .HC_INT_FIELD(Op, int64_t, length)
      .def_readwrite("squeeze", &Op::squeeze)
      .HC_VEC_FIELD(Op, int64_t, perm)
      .HC_VEC_FIELD(Op, int64_t, param_shape)
      .HC_VEC_FIELD(Op, int64_t, indices)
      .HC_VEC_FIELD(Op, int64_t, index_shape)
      .def_readwrite("imag", &Op::imag)
      .def_readwrite("mean", &Op::mean)
      .HC_INT_FIELD(Op, int64_t, extra_params)
      .HC_INT_FIELD(Op, int32_t, ptflops_form)
      .def("__repr__", [](const Op& o) {
        const char* k = op_kind_name(o.kind);
        return "Op(" + std::string(k) + " '" + o.name + "' -> " + std::to_string(o.output) + ")";
      });

  py::class_<Graph>(m, "Graph")
      .def(py::init<>())
      .def_readwrite("tensors", &Graph::tensors)
      .def_readwrite("ops", &Graph::ops)
      .HC_VEC_FIELD(Graph, int32_t, outputs);

  m.def("validate", &validate, py::arg("graph"),
        "Raise GraphError (a ValueError) naming the op and field at fault.");
  m.def(
      "infer_shape",
      [](const Graph& g, py::handle op_index) {
        const int64_t i = to_int<int64_t>(op_index, "op_index");
        if (i < 0 || i >= static_cast<int64_t>(g.ops.size())) {
          throw py::value_error("op_index " + std::to_string(i) + " is out of range (graph has " +
                                std::to_string(g.ops.size()) + " ops)");
        }
        return infer_shape(g, g.ops[static_cast<size_t>(i)]);
      },
      py::arg("graph"), py::arg("op_index"), "Output shape of op `op_index` from its input tensors' shapes.");
  m.def(
      "propagate_shapes",
      [](Graph& g) -> Graph& {
        propagate_shapes(g);
        return g;
      },
      py::arg("graph"), py::return_value_policy::reference,
      "Recompute every op's output shape (and in_channels) from the graph inputs, in place; returns the graph.");
}
