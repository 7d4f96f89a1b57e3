// harcore._core: the C++ core as seen from Python. Each area binds itself in its own file.
#include <pybind11/pybind11.h>

#include "graph/graph.hpp"

namespace py = pybind11;

void bind_graph(py::module_& m);    // bind_graph.cpp: structs, enums, validate, shapes
void bind_cost(py::module_& m);     // bind_cost.cpp: cost(), cost_batch()
void bind_sftnas(py::module_& m);   // bind_sftnas.cpp: differentiable search-loss terms
void bind_kernels(py::module_& m);  // bind_kernels.cpp: the s8 kernels as the submodule `kernels`
void bind_runtime(py::module_& m);  // bind_runtime.cpp: the int8 runtime as the submodule `runtime`

PYBIND11_MODULE(_core, m) {
  m.doc() = "harcore C++ core: op graph, analytical cost model, int8 kernels";
  // harcore::GraphError reaches Python as harcore.errors.GraphError (a ValueError and a HarcoreError), so
  // `except HarcoreError` catches bad graphs too. The class lives in pure Python (harcore/errors.py imports
  // nothing of harcore), so importing it here cannot cycle. The reference is held for the life of the
  // process: the translator may run at any time after init and pybind11 never unloads the module.
  py::object graph_error_cls = py::module_::import("harcore.errors").attr("GraphError");
  m.attr("GraphError") = graph_error_cls;  // _core.GraphError is harcore.errors.GraphError
  static PyObject* graph_error = graph_error_cls.release().ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const harcore::GraphError& e) {
      PyErr_SetString(graph_error, e.what());
    }
  });
  bind_graph(m);
  bind_cost(m);
  bind_sftnas(m);
  bind_kernels(m);
  bind_runtime(m);
}
