// harcore._core: the C++ core as seen from Python. Each area binds itself in its own file.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_graph(py::module_& m);    // bind_graph.cpp: structs, enums, validate, shapes
void bind_cost(py::module_& m);     // bind_cost.cpp: cost(), cost_batch()
void bind_sftnas(py::module_& m);   // bind_sftnas.cpp: differentiable search-loss terms
void bind_kernels(py::module_& m);  // bind_kernels.cpp: the s8 kernels as the submodule `kernels`
void bind_runtime(py::module_& m);  // bind_runtime.cpp: the int8 runtime as the submodule `runtime`

PYBIND11_MODULE(_core, m) {
  m.doc() = "harcore C++ core: op graph, analytical cost model, int8 kernels";
  bind_graph(m);
  bind_cost(m);
  bind_sftnas(m);
  bind_kernels(m);
  bind_runtime(m);
}
