// harcore._core bindings of the differentiable SFTNAS hardware terms (nas/sftnas_terms.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "nas/sftnas_terms.hpp"

namespace py = pybind11;
using harcore::GraphError;
using harcore::SftnasLayerSpec;
using harcore::SftnasSpace;
using harcore::SftnasTailTerm;

namespace {

using Coefs = std::array<double, 4>;

std::vector<SftnasTailTerm> to_terms(const std::vector<Coefs>& v) {
  std::vector<SftnasTailTerm> out;
  out.reserve(v.size());
  for (const Coefs& c : v) out.push_back({c[0], c[1], c[2], c[3]});
  return out;
}

std::vector<Coefs> from_terms(const std::vector<SftnasTailTerm>& v) {
  std::vector<Coefs> out;
  out.reserve(v.size());
  for (const SftnasTailTerm& t : v) out.push_back({t.a, t.b, t.c, t.d});
  return out;
}

SftnasSpace make_space(int64_t c0, int64_t s0, const std::vector<int64_t>& strides,
                       const std::vector<std::vector<int64_t>>& kernels, const std::vector<int64_t>& filters,
                       const std::vector<Coefs>& tail_mem, const std::vector<Coefs>& tail_macs) {
  if (kernels.size() != strides.size() || filters.size() != strides.size()) {
    throw GraphError("sftnas: space fields strides, kernels and filters must have one entry per layer, got " +
                     std::to_string(strides.size()) + ", " + std::to_string(kernels.size()) + " and " +
                     std::to_string(filters.size()));
  }
  std::vector<SftnasLayerSpec> layers(strides.size());
  for (size_t i = 0; i < strides.size(); ++i) layers[i] = {strides[i], kernels[i], filters[i]};
  return SftnasSpace(c0, s0, std::move(layers), to_terms(tail_mem), to_terms(tail_macs));
}

// Kind of a 1-D float32/float64 input; throws GraphError naming the field otherwise.
char float_kind(const py::array& a, const char* field) {
  if (a.ndim() != 1) {
    throw GraphError(std::string("sftnas: ") + field + " must be a 1-D array, got " + std::to_string(a.ndim()) +
                     " dimensions");
  }
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'f' && dt.itemsize() == 4) return 'f';
  if (dt.kind() == 'f' && dt.itemsize() == 8) return 'd';
  throw GraphError(std::string("sftnas: ") + field + " must be float32 or float64, got dtype '" +
                   std::string(py::str(dt)) + "'");
}

template <typename T>
py::tuple forward_typed(const SftnasSpace& space, const py::array& b0, const py::array& masks,
                        const py::array& probs, double scale, double mem_limit) {
  using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;
  const Arr b = Arr::ensure(b0);
  const Arr m = Arr::ensure(masks);
  const Arr p = Arr::ensure(probs);
  py::array_t<double> jac({py::ssize_t{4}, static_cast<py::ssize_t>(space.num_jac_columns())});
  const harcore::SftnasValues v =
      harcore::sftnas_forward<T>(space, b.data(), b.size(), m.data(), m.size(), p.data(), p.size(), scale,
                                 mem_limit, jac.mutable_data());
  // Four separate 0-d arrays of the input dtype: torch.from_numpy makes independent scalar tensors of them.
  py::tuple values(4);
  for (size_t o = 0; o < 4; ++o) {
    py::array_t<T> a(std::vector<py::ssize_t>{});
    *a.mutable_data() = static_cast<T>(v.values[o]);
    values[o] = std::move(a);
  }
  return py::make_tuple(std::move(values), jac, v.pmem_term);
}

template <typename T>
py::tuple backward_typed(const SftnasSpace& space, const py::array_t<double>& jac, const double g[4]) {
  py::array_t<T> gb(space.c0());
  py::array_t<T> gm(space.num_masks());
  py::array_t<T> gp(space.num_probs());
  harcore::sftnas_backward<T>(space, jac.data(), g, gb.mutable_data(), gm.mutable_data(), gp.mutable_data());
  return py::make_tuple(gb, gm, gp);
}

}  // namespace

void bind_sftnas(py::module_& m) {
  py::class_<SftnasSpace>(m, "SftnasSpace",
                          "Validated SFTNAS search-stage description (see nas/sftnas_terms.hpp). Tail terms are "
                          "(a, b, c, d) for a + b*bL + c*c0 + d*bL*c0.")
      .def(py::init(&make_space), py::arg("c0"), py::arg("s0"), py::arg("strides"), py::arg("kernels"),
           py::arg("filters"), py::arg("tail_mem") = std::vector<Coefs>{},
           py::arg("tail_macs") = std::vector<Coefs>{})
      .def_property_readonly("c0", &SftnasSpace::c0)
      .def_property_readonly("s0", &SftnasSpace::s0)
      .def_property_readonly("num_layers", &SftnasSpace::num_layers)
      .def_property_readonly("lengths", &SftnasSpace::lengths)
      .def_property_readonly("num_masks", &SftnasSpace::num_masks)
      .def_property_readonly("num_probs", &SftnasSpace::num_probs)
      .def_property_readonly("num_convs", &SftnasSpace::num_convs)
      .def_property_readonly("num_jac_columns", &SftnasSpace::num_jac_columns)
      .def_property_readonly("tail_mem", [](const SftnasSpace& s) { return from_terms(s.tail_mem()); })
      .def_property_readonly("tail_macs", [](const SftnasSpace& s) { return from_terms(s.tail_macs()); });

  m.def("sftnas_num_stride2", &harcore::sftnas_num_stride2, py::arg("s0"),
        "N = floor(log2(s0 / 4)): number of stride-2 layers in the SFTNAS search space.");

  m.def(
      "sftnas_forward",
      [](const SftnasSpace& space, const py::array& b0, const py::array& masks, const py::array& probs,
         double scale, double mem_limit) {
        const char kb = float_kind(b0, "b0");
        const char km = float_kind(masks, "masks");
        const char kp = float_kind(probs, "probs");
        if (km != kb || kp != kb) {
          throw GraphError("sftnas: b0, masks and probs must share one dtype (float32 or float64)");
        }
        return kb == 'f' ? forward_typed<float>(space, b0, masks, probs, scale, mem_limit)
                         : forward_typed<double>(space, b0, masks, probs, scale, mem_limit);
      },
      py::arg("space"), py::arg("b0"), py::arg("masks"), py::arg("probs"), py::arg("scale"), py::arg("mem_limit"),
      "Returns ((macs, complexity, pmem, mem_loss), jac, pmem_term): the values (0-d arrays of the inputs' "
      "dtype), the compact float64 Jacobian "
      "(4 x num_jac_columns, columns c0hat | B per (layer, conv) | probs) and the arg-max term of PMem "
      "(layer index, num_layers + tail index, or num_layers + len(tail_mem) for the input buffer).");

  m.def(
      "sftnas_backward",
      [](const SftnasSpace& space, const py::array_t<double, py::array::c_style | py::array::forcecast>& jac,
         double g_macs, double g_complexity, double g_pmem, double g_mem_loss, bool float64) {
        if (jac.ndim() != 2 || jac.shape(0) != 4 || jac.shape(1) != space.num_jac_columns()) {
          throw GraphError("sftnas: jac must have shape (4, " + std::to_string(space.num_jac_columns()) + ")");
        }
        const double g[4] = {g_macs, g_complexity, g_pmem, g_mem_loss};
        return float64 ? backward_typed<double>(space, jac, g) : backward_typed<float>(space, jac, g);
      },
      py::arg("space"), py::arg("jac"), py::arg("g_macs"), py::arg("g_complexity"), py::arg("g_pmem"),
      py::arg("g_mem_loss"), py::arg("float64") = true,
      "Vector-Jacobian product: (grad_b0, grad_masks, grad_probs) for the given output gradients.");
}
