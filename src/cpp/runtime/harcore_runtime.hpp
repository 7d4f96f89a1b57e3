// harcore's int8 runtime: a lowered program of kernel calls over one caller-owned arena.
//
// The same source runs in the host simulation (harcore.quant.simulate, via bind_runtime.cpp) and in the
// firmware (arm-none-eabi-g++ -mcpu=cortex-m33): C++17, fixed-width types, no heap, no exceptions, no
// RTTI, no <vector>/<string>. A Model is plain constant data: `harcore.quant.lower(g).emit_cpp()` writes
// one, with every weight a `const` array (flash) and constant initialization only.
//
// Every tensor lives in the arena at a byte offset chosen by the Python planner (harcore/quant/lower.py),
// in the kernels' layout (NHWC for conv/pool data); torch transposes and reshapes are aliases or explicit
// kCopy/kGather steps. The model input is copied into the arena at `input_offset` before the first step and
// the output copied out of `output_offset` after the last.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_batch_matmul.hpp"
#include "kernels/arm_nn_gru.hpp"
#include "kernels/arm_nn_lstm.hpp"
#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace rt {

constexpr int32_t kFormatVersion = 1;

// invoke() return codes. A kernel failure returns kKernelError - step_index (so <= -100).
enum Status : int32_t {
  kOk = 0,
  kBadArgument = -1,    // NULL pointer, wrong arena size
  kBadModel = -2,       // wrong format version, step or buffer outside the arena, unknown step kind
  kKernelError = -100,  // kKernelError - i: step i's kernel returned a non-success status
};

enum StepKind : int32_t {
  kConv = 1,            // arm_convolve_wrapper_s8                      ConvArgs
  kDepthwise = 2,       // arm_depthwise_conv_wrapper_s8                DepthwiseArgs
  kFullyConnected = 3,  // arm_fully_connected_per_channel_s8           FullyConnectedArgs
  kMaxPool = 4,         // arm_max_pool_s8                              PoolArgs
  kAvgPool = 5,         // arm_avgpool_s8                               PoolArgs
  kAdd = 6,             // arm_elementwise_add_s8 / _sub_s8             AddArgs
  kMul = 7,             // arm_elementwise_mul_s8, broadcasting         MulArgs
  kSoftmax = 8,         // arm_softmax_s8                               SoftmaxArgs
  kReduceSum = 9,       // sum / mean over one axis (requantized)       ReduceSumArgs
  kClamp = 10,          // arm_clamp_s8 (standalone ReLU / ReLU6)       ClampArgs
  kLstm = 11,           // arm_lstm_unidirectional_s8, 1 or 2 dirs      LstmArgs
  kGru = 12,            // arm_gru_unidirectional_s8, 1 or 2 dirs       GruArgs
  kCopy = 13,           // strided int8 copy (slice, relayout)          CopyArgs
  kGather = 14,         // int8 gather by an index table                GatherArgs
  kBatchMatMul = 15,    // arm_batch_matmul_s8 (two activations)        BatchMatMulArgs
  kTanh = 16,           // arm_tanh_s8 (standalone TANH)                LutArgs
  kLogistic = 17,       // arm_logistic_s8 (standalone LOGISTIC)        LutArgs
};

struct ConvArgs {
  kernels::cmsis_nn_conv_params conv;
  kernels::cmsis_nn_dims input_dims, filter_dims, output_dims;
  const int8_t* filter;  // OHWI
  const int32_t* bias;
  const int32_t* multiplier;  // per output channel
  const int32_t* shift;
};

struct DepthwiseArgs {
  kernels::cmsis_nn_dw_conv_params dw;
  kernels::cmsis_nn_dims input_dims, filter_dims, output_dims;
  const int8_t* filter;  // 1HWC
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* shift;
};

struct FullyConnectedArgs {
  kernels::cmsis_nn_fc_params fc;
  int32_t batches;       // rows of the input
  int32_t depth;         // K
  int32_t out_features;  // C_out
  const int8_t* filter;  // [C_out, K], columns already in the input's physical order
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* shift;
};

struct PoolArgs {
  kernels::cmsis_nn_pool_params pool;
  kernels::cmsis_nn_dims input_dims, filter_dims, output_dims;
};

struct AddArgs {
  kernels::cmsis_nn_add_params p;
  int32_t act_min, act_max;
  int32_t size;
  int32_t subtract;  // 1: input0 - input1 (TFLite SUB)
};

// Broadcasting MUL over up to 4 dims: output is contiguous over `dims`; input k element (i0..i3) is at
// input_k + sum(i_j * strides_k[j]) (stride 0 on a broadcast dim). A constant second operand (a model
// parameter, e.g. TinyHAR's gamma: TFLite MUL with an int8 constant tensor) is `input1_data` with the
// step's input1 = -1; NULL when input1 is an arena tensor.
struct MulArgs {
  kernels::cmsis_nn_mul_params p;
  int32_t act_min, act_max;
  int32_t dims[4];
  int32_t input0_strides[4];
  int32_t input1_strides[4];
  const int8_t* input1_data;
};

struct SoftmaxArgs {
  int32_t rows, row_size;
  int32_t mult, shift, diff_min;
};

// out[o][i] = clamp(zp_out + rq(sum_r (in[o][r][i] + input_offset), mult, shift)), in contiguous [outer][reduce][inner].
struct ReduceSumArgs {
  int32_t outer, reduce, inner;
  int32_t input_offset;   // -zp_in
  int32_t output_offset;  // +zp_out
  int32_t mult, shift;    // s_in / s_out (sum) or s_in / (n * s_out) (mean)
};

struct ClampArgs {
  int32_t size;
  int32_t input_offset, output_offset, mult, shift, act_min, act_max;
};

// One LSTM layer. The output is direction-major: [dir][T][H]; the backward half is in processing order
// (time reversed); the planner's layout for this tensor says so. The backward direction reads its input
// time-reversed from `reversed_input` (an arena offset, T*I bytes), written by the step.
struct LstmArgs {
  kernels::cmsis_nn_lstm_params dir[2];
  int32_t num_directions;
  int32_t reversed_input;  // arena offset, -1 when unidirectional
};

// One GRU layer; output [T][dirs*H] (each direction writes its half with output_stride dirs*H).
struct GruArgs {
  kernels::cmsis_nn_gru_params dir[2];
  int32_t num_directions;
};

// out (contiguous, extents[0] x .. x extents[3], last fastest) = in[src_offset + sum(i_k * strides[k])].
struct CopyArgs {
  int32_t src_offset;
  int32_t extents[4];
  int32_t strides[4];
};

struct GatherArgs {
  int32_t size;
  const int32_t* index;  // out[i] = in[index[i]]
};

// lhs (n, h, M, K) at input0, rhs transposed (n, h, N, K) at input1, output (n, h, M, N); see
// arm_nn_batch_matmul.hpp. The lowering picks which torch operand is lhs so that both are row-contiguous.
struct BatchMatMulArgs {
  kernels::cmsis_nn_bmm_params bmm;
  kernels::cmsis_nn_per_tensor_quant_params quant;
  kernels::cmsis_nn_dims lhs_dims, rhs_dims, output_dims;
};

// Standalone TANH / LOGISTIC over `size` bytes (TFLM's int8 scheme; output (1/128, 0) / (1/256, -128)).
struct LutArgs {
  int32_t size;
  kernels::cmsis_nn_lut_act_params p;
};

struct Step {
  int32_t kind;          // StepKind
  int32_t input0;        // arena byte offsets
  int32_t input1;        // -1 when unused
  int32_t output;
  int32_t output_size;   // bytes written at `output`
  int32_t scratch;       // arena offset of the kernel's scratch buffer (4-byte aligned), -1 for none
  int32_t scratch_size;  // bytes
  const void* args;      // the kind's *Args struct
};

struct Model {
  int32_t format_version;  // kFormatVersion
  const Step* steps;
  int32_t num_steps;
  int32_t arena_size;      // bytes the arena must have
  int32_t input_offset;
  int32_t input_size;      // bytes
  int32_t output_offset;
  int32_t output_size;     // bytes
};

// Called after every step with the arena (debugging / per-layer capture); may be NULL.
typedef void (*StepObserver)(void* user, int32_t step_index, const int8_t* arena);

// Runs the model on one int8 input (input_size bytes) into output (output_size bytes). The arena must hold
// at least m.arena_size bytes and be 4-byte aligned; it is scratch only (nothing survives between calls).
int32_t invoke(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size);
int32_t invoke_observed(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size,
                        StepObserver observer, void* user);

}  // namespace rt
}  // namespace harcore
