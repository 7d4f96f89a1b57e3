// Differentiable hardware terms of the SFTNAS search loss (Zhou et al., "Enhancing Efficiency in HAR
// Models: NAS Meets Pruning", Eq. 10-13), with analytic reverse-mode gradients.
//
// Searchable stage (TinyHAR / SFTNAS individual-convolution block). Activations are (F, T, C) in torch,
// NHWC (T, C, F) int8 on the target. Layer i = 1..L is Conv2d(F_{i-1} -> F_i, kernel (k, 1),
// stride (t_i, 1), padding ((k-1)/2, 0)) applied independently to every sensor channel; F_0 = 1.
// With odd k the length is s_i = ceil(s_{i-1} / t_i). Each layer offers convs with the kernels of its
// list and, on stride-1 layers only, an identity (so the N stride-2 layers always run and every s_i is
// fixed). Candidate order in a layer: its kernels as listed, then the identity when offered.
//
// Inputs (all non-negative, finite):
//   b0     (c0)                         DCS mask over the sensor channels, c^0 = sum(b0)
//   masks  sum_i n_i * F_i, flat        DCS mask b_i^j after conv candidate j of layer i, in
//                                       (layer, candidate, filter) order; B_i^j = sum(b_i^j)
//   probs  sum_i (n_i + [t_i == 1])     operator weights p_i^j in (layer, candidate) order
// with n_i the number of conv candidates of layer i. Derived:
//   b^_0 = 1,  b^_i = sum_j p_i^j B_i^j + p_i^id b^_{i-1}
//   macs_i^j = s_i c^0 b^_{i-1} B_i^j k_j                      (the cost model's conv MACs)
//   M     = sum_i sum_j p_i^j macs_i^j + sum_t tail_macs_t
//   L_c   = sum_i sum_j p_i^j (macs_i^j / scale)^2 + sum_t (tail_macs_t / scale)^2          (Eq. 11)
//   mem_i = sum_j p_i^j (s_{i-1} c^0 b^_{i-1} + s_i c^0 B_i^j + extra_i^j)               (Eq. 12)
//           extra = 0 for k = 1, else 4 * ceil4(k b^_{i-1})  (gradient: that of 4 k b^_{i-1})
//   PMem  = max(mem_1..mem_L, tail_mem_t, s0 c^0)  (gradient to the first arg-max term; the stage
//           input buffer s0 c^0 only decides it when every layer is an identity and no tail is larger)
//   L_mem = log(PMem / L_Mem) if PMem > L_Mem else 0                                      (Eq. 13)
// A tail term (the later, fixed stages of the backbone) is a + b b^_L + c c^0 + d b^_L c^0.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/graph.hpp"

namespace harcore {

// a + b * b^_L + c * c^0 + d * b^_L * c^0
struct SftnasTailTerm {
  double a = 0.0;
  double b = 0.0;
  double c = 0.0;
  double d = 0.0;
};

struct SftnasLayerSpec {
  int64_t stride = 1;            // t_i >= 1; identity is offered iff t_i == 1
  std::vector<int64_t> kernels;  // conv kernel sizes (odd, >= 1, distinct), e.g. {1, 3, 5, 7}
  int64_t filters = 0;           // F_i: length of each candidate's DCS mask
};

// The immutable search-space description with precomputed offsets. The constructor validates it and
// throws GraphError naming the field at fault.
class SftnasSpace {
 public:
  SftnasSpace(int64_t c0, int64_t s0, std::vector<SftnasLayerSpec> layers,
              std::vector<SftnasTailTerm> tail_mem, std::vector<SftnasTailTerm> tail_macs);

  int64_t c0() const { return c0_; }
  int64_t s0() const { return s0_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const std::vector<SftnasLayerSpec>& layers() const { return layers_; }
  const std::vector<SftnasTailTerm>& tail_mem() const { return tail_mem_; }
  const std::vector<SftnasTailTerm>& tail_macs() const { return tail_macs_; }
  bool has_identity(int64_t layer) const { return layers_[layer].stride == 1; }
  // s_i for i = 0..L (length L + 1).
  const std::vector<int64_t>& lengths() const { return lengths_; }
  int64_t num_masks() const { return n_masks_; }
  int64_t num_probs() const { return n_probs_; }
  // Number of (layer, conv candidate) pairs.
  int64_t num_convs() const { return n_convs_; }
  // Columns of the compact Jacobian: [c^0, B_(i,j) for every conv pair, p for every prob].
  int64_t num_jac_columns() const { return 1 + n_convs_ + n_probs_; }
  // First conv-pair index and first prob index of each layer (length L + 1, last = total).
  const std::vector<int64_t>& conv_offsets() const { return conv_offsets_; }
  const std::vector<int64_t>& prob_offsets() const { return prob_offsets_; }

 private:
  int64_t c0_;
  int64_t s0_;
  std::vector<SftnasLayerSpec> layers_;
  std::vector<SftnasTailTerm> tail_mem_;
  std::vector<SftnasTailTerm> tail_macs_;
  std::vector<int64_t> lengths_;
  std::vector<int64_t> conv_offsets_;
  std::vector<int64_t> prob_offsets_;
  int64_t n_masks_ = 0;
  int64_t n_probs_ = 0;
  int64_t n_convs_ = 0;
};

enum SftnasOutput : int32_t { kSftnasMacs = 0, kSftnasComplexity = 1, kSftnasPMem = 2, kSftnasMemLoss = 3 };

struct SftnasValues {
  double values[4] = {0.0, 0.0, 0.0, 0.0};  // indexed by SftnasOutput
  // Arg-max of PMem: 0..L-1 a searchable layer, L + t the tail memory term t, L + #tail_mem the input.
  int64_t pmem_term = -1;
};

// N = floor(log2(s0 / 4)): the number of stride-2 layers of the SFTNAS search space (s0 >= 4).
int64_t sftnas_num_stride2(int64_t s0);

// Forward values plus the compact Jacobian `jac` (row-major, 4 x space.num_jac_columns(), rows indexed
// by SftnasOutput): d(output)/d(c^0), d(output)/d(B_i^j), d(output)/d(p_i^j). Validates sizes and
// values (GraphError naming the field, layer and candidate). T is float or double; maths is double.
template <typename T>
SftnasValues sftnas_forward(const SftnasSpace& space, const T* b0, int64_t n_b0, const T* masks,
                            int64_t n_masks, const T* probs, int64_t n_probs, double scale,
                            double mem_limit, double* jac);

// Vector-Jacobian product: given d(loss)/d(outputs) (4 values) and the compact Jacobian from
// `sftnas_forward`, writes d(loss)/d(b0) (c0), d(loss)/d(masks) (num_masks) and d(loss)/d(probs)
// (num_probs). Every b0 entry shares d/d(c^0); every filter of candidate (i, j) shares d/d(B_i^j).
template <typename T>
void sftnas_backward(const SftnasSpace& space, const double* jac, const double grad_out[4], T* g_b0,
                     T* g_masks, T* g_probs);

}  // namespace harcore
