// Analytical cost model: MACs, parameters, int8 flash and int8 peak SRAM of an op graph.
//
// Conventions (stated once, used everywhere):
// * MAC: one multiply-accumulate = 1. `macs` counts conv, linear, RNN gate matrix products and
//   activation-by-activation matmuls (attention). Bias adds, batch-norm, activations, pooling and
//   other elementwise work are *not* MACs; they are reported in `extra_ops` so that the
//   ptflops-style totals the HAR papers quote (ptflops 0.7.5, pytorch backend) are `ptflops_macs`.
// * Deployment (flash / SRAM) figures are for the int8 graph run batch 1 on CMSIS-NN-equivalent
//   kernels built for a Cortex-M33 with the DSP extension and GCC: BN directly after a conv/linear
//   is folded into it, ReLU/ReLU6/Hardtanh directly after a conv/linear/add/pool is fused into its
//   clamp, reshapes alias their input; every other op runs out of place.
// * mem(op) = bytes of every tensor live while the op runs (its inputs, tensors kept for later
//   consumers, its output) + the kernel's scratch buffer; peak SRAM = max over executed ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace harcore {

struct OpCost {
  int64_t macs = 0;          // core MACs
  int64_t ptflops_macs = 0;  // what ptflops 0.7.5 (pytorch backend) counts for this op
  int64_t params = 0;        // trainable parameters, torch's sum(p.numel())
  int64_t out_elems = 0;     // output activation elements
  int64_t flash = 0;         // int8 weights + int32 biases + per-channel (multiplier, shift)
  int64_t scratch = 0;       // kernel scratch bytes (CMSIS-NN rules, DSP build, GCC)
  int64_t mem = 0;           // bytes live while this op runs (0 when fused / aliased)
  bool fused = false;        // folded or fused into the previous op at deployment
  bool alias = false;        // output shares its input's buffer (reshape, in-place clamp)
};

struct CostTotals {
  int64_t macs = 0;
  int64_t ptflops_macs = 0;
  int64_t params = 0;
  int64_t flash = 0;
  int64_t peak_sram = 0;
  int32_t peak_op = -1;  // index of the op where the peak occurs
};

struct CostReport {
  std::vector<OpCost> ops;  // one per graph op, same order
  CostTotals total;
};

// The cost model's own acceptance test: `validate` (structure and shapes), then one pass of the cost
// model with overflow-checked arithmetic. Throws GraphError naming the op and field when a cost figure
// overflows int64 or a size does not fit the kernels' int32 API. The graph layer does not know the cost
// model, so this check lives here and every cost entry point runs it (`cost`, `cost_batch`).
void validate_cost(const Graph& g);

// Validates the graph (as `validate_cost`), then costs it. Throws GraphError on bad input.
CostReport cost(const Graph& g);

// Same without validation and without per-op rows. Cannot overflow on a graph that `validate_cost`
// (or `cost`) accepted; undefined figures (wrapped, never UB) on any other graph.
CostTotals cost_totals_unchecked(const Graph& g);

// ---- batch API: one template graph, many candidates that differ in integer fields ----------

enum class Field : int32_t {
  OutChannels = 0,  // Conv/Linear out_channels, RNN hidden size
  KernelW = 1,
  KernelH = 2,
  StrideW = 3,
  StrideH = 4,
  PadW = 5,         // sets pad left and right
  Groups = 6,
  Enabled = 7,      // 0: the op becomes an identity (its output must equal its input shape)
  InputDim = 8,     // with `dim`: a dimension of an Input op's tensor
};

struct Binding {
  int32_t op = 0;
  Field field = Field::OutChannels;
  int32_t dim = 0;     // InputDim only
  int32_t column = 0;  // column of the values matrix
};

// values: row-major (n_rows x n_cols) int64. Writes n_rows x 4 results (macs, params,
// peak_sram, flash) into `out`. Rows that give an invalid graph throw GraphError naming the row.
void cost_batch(const Graph& tmpl, const std::vector<Binding>& bindings, const int64_t* values,
                int64_t n_rows, int64_t n_cols, int64_t* out);

}  // namespace harcore
