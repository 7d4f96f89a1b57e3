// The op graph: harcore's one description of a network.
//
// The cost model reads it, quantization annotates it, simulation executes it and deploy emits it.
// Tensors carry the torch shape *without* the batch dimension: (C, T) for 1-D sequence data,
// (C, H, W) after a 2-D conv, (T, F) for a batch-first RNN input. Ops are stored in execution order.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace harcore {

// Raised for any malformed graph; the message names the op and the field at fault.
class GraphError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class OpKind : int32_t {
  Input = 0,      // graph input placeholder (no inputs)
  Conv = 1,       // conv over the trailing 1 or 2 dims; groups give depthwise / pointwise
  Linear = 2,     // y = x W^T + b over the last dim, any leading dims
  BatchNorm = 3,  // per-channel affine over dim 0
  Activation = 4, // elementwise unary nonlinearity (see ActKind)
  Pool = 5,       // max / avg pooling over the trailing 1 or 2 dims
  GlobalPool = 6, // max / avg over all dims but dim 0 -> (C,) ... keep_dims gives (C,1[,1])
  Add = 7,        // elementwise sum of two tensors, numpy broadcasting (residual), or plus a parameter
  Mul = 8,        // elementwise product with a tensor (numpy broadcasting) or a parameter
  Concat = 9,     // along `axis`
  Reshape = 10,   // view / flatten / squeeze / unsqueeze: same element count
  Transpose = 11, // permute dims (`perm`)
  Slice = 12,     // select a contiguous range [start, start+length) of `axis` (length 1 + squeeze: index)
  RNN = 13,       // one layer of LSTM or GRU over (T, I) -> (T, H*dirs), batch-first
  MatMul = 14,    // batched matrix product of two activations: (..., M, K) @ (..., K, N)
  Softmax = 15,   // along `axis`
  Mean = 16,      // reduce-mean / reduce-sum along `axis` (keep_dims per field)
  LayerNorm = 17, // normalize over the trailing dims `axis`.. (torch normalized_shape); `bias`: affine
  Gather = 18,    // constant integer `indices` (shape `index_shape`) taken along `axis`: that dim is
                  // replaced by `index_shape` (torch x[:, :, idx] with one index tensor)
  DFT = 19,       // one part (`imag`: false = real, true = imaginary) of the unnormalized DFT of real
                  // data along the last dim, keeping the first `length` bins (n for fft, n/2+1 for rfft)
};

enum class ActKind : int32_t {
  ReLU = 0, ReLU6 = 1, Sigmoid = 2, Tanh = 3, LeakyReLU = 4, ELU = 5, GELU = 6, Hardtanh = 7, SiLU = 8,
  Identity = 9,
};

enum class PoolKind : int32_t { Max = 0, Avg = 1 };
enum class RnnCell : int32_t { LSTM = 0, GRU = 1 };

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;  // without batch
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// One op. Fields not used by a kind stay at their defaults; `validate` rejects inconsistent values.
struct Op {
  OpKind kind = OpKind::Input;
  std::string name;
  std::vector<int32_t> inputs;  // activation tensor ids (parameters are not tensors)
  int32_t output = -1;          // tensor id

  // Conv / Linear / BatchNorm / RNN
  int64_t in_channels = 0;   // Conv: C_in; Linear: in_features; BN: channels; RNN: input_size
  int64_t out_channels = 0;  // Conv: C_out; Linear: out_features; RNN: hidden_size
  int64_t groups = 1;
  bool bias = false;         // Conv/Linear: has a bias vector; RNN: has b_ih and b_hh; BN, LayerNorm: affine
  // Conv / Pool geometry, (h, w); a 1-D op has h = 1 with kernel_h = stride_h = 1, no h padding.
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> dilation{1, 1};
  std::array<int64_t, 4> pad{0, 0, 0, 0};  // top, bottom, left, right
  bool ceil_mode = false;                  // Pool
  bool count_include_pad = true;           // avg Pool (torch default)

  ActKind act = ActKind::Identity;  // Activation
  PoolKind pool = PoolKind::Max;    // Pool / GlobalPool
  RnnCell cell = RnnCell::LSTM;     // RNN
  bool bidirectional = false;       // RNN

  int32_t axis = 0;            // Concat / Softmax / Slice / Mean / Gather; LayerNorm: first normalized dim
                               // (non-negative, batch excluded)
  bool keep_dims = false;      // GlobalPool / Mean
  int64_t start = 0;           // Slice
  int64_t length = 0;          // Slice: elements kept along `axis`; DFT: frequency bins kept
  bool squeeze = false;        // Slice: drop `axis` (integer indexing)
  std::vector<int64_t> perm;   // Transpose
  std::vector<int64_t> param_shape;  // Mul / Add with a parameter: its shape (broadcast against the input)
  std::vector<int64_t> indices;      // Gather: the constant indices, row-major, each in [0, size of `axis`)
  std::vector<int64_t> index_shape;  // Gather: their shape (empty: one scalar index, `axis` is dropped)
  bool imag = false;                 // DFT: the imaginary part (sin table) instead of the real part
  bool mean = true;            // Mean: true = mean, false = sum
  int64_t extra_params = 0;    // trainable scalars/tensors owned by this op beyond the standard ones
  // How ptflops 0.7.5 sees the op's torch spelling, for `ptflops_macs` only: 0 = nn.Module or a
  // patched torch.* op (torch.add/mul/matmul), 1 = a patched F.* functional (counted once where
  // the module form counts twice), 2 = not seen (operator +/*, torch.softmax, einsum, torch.relu).
  int32_t ptflops_form = 0;
};

struct Graph {
  std::vector<Tensor> tensors;
  std::vector<Op> ops;
  std::vector<int32_t> outputs;  // tensor ids that are graph outputs (kept live to the end)
};

const char* op_kind_name(OpKind k);
const char* act_kind_name(ActKind k);

// Output shape of `op` given its input shapes; throws GraphError naming op and field.
std::vector<int64_t> infer_shape(const Graph& g, const Op& op);

// Checks every op: known kind, ids in range and defined before use, positive sizes, attribute
// consistency with input shapes, recorded output shapes equal to the inferred ones, no overflow.
void validate(const Graph& g);

// Recomputes every op's output shape from the graph inputs (used by the batch API after
// rebinding channel counts / kernel sizes). Throws GraphError like `validate`.
void propagate_shapes(Graph& g);

// The batch API's hot loop: re-derives every shape after integer fields changed, like
// propagate_shapes, but trusts the graph's *structure* (ids, kinds, op order), which must have
// passed `validate` before; sizes and attributes are still checked. No allocation per call.
struct ShapeScratch {
  std::vector<int32_t> writer;
  std::vector<int64_t> shape;
};
void rederive_shapes(Graph& g, ShapeScratch& scratch);

}  // namespace harcore
