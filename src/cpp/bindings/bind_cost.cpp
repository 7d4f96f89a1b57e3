// harcore._core: the analytical cost model — cost(graph) -> CostReport and the batch API
// cost_batch(template, bindings, values) -> int64 (N, 4) [macs, params, peak_sram, flash].
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cost/cost_model.hpp"

namespace py = pybind11;
using namespace harcore;

namespace {

int32_t to_i32(py::handle h, const char* what) {
  py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
  if (!idx) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    throw py::value_error(std::string(what) + ": " + std::string(py::str(h)) + " is out of range for int32");
  }
  return static_cast<int32_t>(v);
}

Field to_field(py::handle h) {
  if (py::isinstance<Field>(h)) return h.cast<Field>();
  return static_cast<Field>(to_i32(h, "Binding.field"));
}

std::string op_cost_repr(const OpCost& c) {
  return "OpCost(macs=" + std::to_string(c.macs) + ", ptflops_macs=" + std::to_string(c.ptflops_macs) +
         ", params=" + std::to_string(c.params) + ", out_elems=" + std::to_string(c.out_elems) +
         ", flash=" + std::to_string(c.flash) + ", scratch=" + std::to_string(c.scratch) +
         ", mem=" + std::to_string(c.mem) + ", fused=" + (c.fused ? "True" : "False") +
         ", alias=" + (c.alias ? "True" : "False") + ")";
}

}  // namespace

void bind_cost(py::module_& m) {
  py::class_<OpCost>(m, "OpCost")
      .def(py::init<>())
      .def_readonly("macs", &OpCost::macs)
      .def_readonly("ptflops_macs", &OpCost::ptflops_macs)
      .def_readonly("params", &OpCost::params)
      .def_readonly("out_elems", &OpCost::out_elems)
      .def_readonly("flash", &OpCost::flash)
      .def_readonly("scratch", &OpCost::scratch)
      .def_readonly("mem", &OpCost::mem)
      .def_readonly("fused", &OpCost::fused)
      .def_readonly("alias", &OpCost::alias)
      .def("__repr__", &op_cost_repr);

  py::class_<CostTotals>(m, "CostTotals")
      .def(py::init<>())
      .def_readonly("macs", &CostTotals::macs)
      .def_readonly("ptflops_macs", &CostTotals::ptflops_macs)
      .def_readonly("params", &CostTotals::params)
      .def_readonly("flash", &CostTotals::flash)
      .def_readonly("peak_sram", &CostTotals::peak_sram)
      .def_readonly("peak_op", &CostTotals::peak_op)
      .def("__repr__", [](const CostTotals& t) {
        return "CostTotals(macs=" + std::to_string(t.macs) + ", ptflops_macs=" + std::to_string(t.ptflops_macs) +
               ", params=" + std::to_string(t.params) + ", flash=" + std::to_string(t.flash) +
               ", peak_sram=" + std::to_string(t.peak_sram) + ", peak_op=" + std::to_string(t.peak_op) + ")";
      });

  py::class_<CostReport>(m, "CostReport")
      .def(py::init<>())
      .def_readonly("ops", &CostReport::ops)
      .def_readonly("total", &CostReport::total);

  py::enum_<Field>(m, "Field")
      .value("OutChannels", Field::OutChannels)
      .value("KernelW", Field::KernelW)
      .value("KernelH", Field::KernelH)
      .value("StrideW", Field::StrideW)
      .value("StrideH", Field::StrideH)
      .value("PadW", Field::PadW)
      .value("Groups", Field::Groups)
      .value("Enabled", Field::Enabled)
      .value("InputDim", Field::InputDim);

  py::class_<Binding>(m, "Binding")
      .def(py::init([](py::handle op, py::handle field, py::handle column, py::handle dim) {
             Binding b;
             b.op = to_i32(op, "Binding.op");
             b.field = to_field(field);
             b.column = to_i32(column, "Binding.column");
             b.dim = to_i32(dim, "Binding.dim");
             return b;
           }),
           py::arg("op"), py::arg("field"), py::arg("column"), py::arg("dim") = 0)
      .def_property(
          "op", [](const Binding& b) { return b.op; }, [](Binding& b, py::handle v) { b.op = to_i32(v, "Binding.op"); })
      .def_property(
          "field", [](const Binding& b) { return b.field; }, [](Binding& b, py::handle v) { b.field = to_field(v); })
      .def_property(
          "dim", [](const Binding& b) { return b.dim; }, [](Binding& b, py::handle v) { b.dim = to_i32(v, "Binding.dim"); })
      .def_property(
          "column", [](const Binding& b) { return b.column; },
          [](Binding& b, py::handle v) { b.column = to_i32(v, "Binding.column"); })
      .def("__repr__", [](const Binding& b) {
        return "Binding(op=" + std::to_string(b.op) + ", field=" + std::to_string(static_cast<int32_t>(b.field)) +
               ", column=" + std::to_string(b.column) + ", dim=" + std::to_string(b.dim) + ")";
      });

  m.def("validate_cost", &validate_cost, py::arg("graph"),
        "validate(graph), then the cost model's overflow-checked arithmetic: GraphError naming the op and field\n"
        "when a cost figure overflows int64 or a size does not fit the kernels' int32 API.");
  m.def("cost", &cost, py::arg("graph"),
        "Validate the graph, then cost it: per-op rows and totals (GraphError on a malformed graph).");
  m.def(
      "cost_batch",
      [](const Graph& g, const std::vector<Binding>& bindings, const py::array& values) {
        if (!values.dtype().is(py::dtype::of<int64_t>())) {
          throw py::value_error("cost_batch: values must be an int64 array, got dtype " +
                                std::string(py::str(values.dtype())));
        }
        if (values.ndim() != 2) {
          throw py::value_error("cost_batch: values must be 2-D (rows x columns), got " +
                                std::to_string(values.ndim()) + "-D");
        }
        if (!(values.flags() & py::array::c_style)) {
          throw py::value_error("cost_batch: values must be C-contiguous");
        }
        const auto n_rows = static_cast<int64_t>(values.shape(0));
        const auto n_cols = static_cast<int64_t>(values.shape(1));
        py::array_t<int64_t> out({static_cast<py::ssize_t>(n_rows), static_cast<py::ssize_t>(4)});
        const auto* v = static_cast<const int64_t*>(values.data());
        int64_t* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          cost_batch(g, bindings, v, n_rows, n_cols, o);
        }
        return out;
      },
      py::arg("graph"), py::arg("bindings"), py::arg("values"),
      "Cost many candidates of one template graph: values[r, b.column] is written into binding b's field\n"
      "for row r; returns int64 (N, 4) [macs, params, peak_sram, flash]. GraphError names the bad row.");
}
