// harcore's int8 runtime: a lowered program of kernel calls over one caller-owned arena.
//
// The same source runs in the host simulation (harcore.quant.simulate, via bind_runtime.cpp) and in the
// firmware (arm-none-eabi-g++ -mcpu=cortex-m33): C++17, fixed-width types, no heap, no exceptions, no
// RTTI, no <vector>/<string>. A Model is plain constant data: `harcore.quant.lower(g).emit_cpp()` writes
// one, with every weight a `const` array (flash) and constant initialization only.
//
// Every tensor lives in the arena at a byte offset chosen by the Python planner (harcore/quant/planner.py),
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

// The step kinds and their *Args structs are generated from harcore_steps.def, the one description of the
// steps' arguments (field order, types) that the Python binding, the lowerer and the C++ emitter also read.
enum StepKind : int32_t {
#define HARCORE_STEP(name, Enum, value, Args) Enum = value,
#include "runtime/harcore_steps.def"
};

#define HARCORE_ARGS(S) struct S {
#define HARCORE_FIELD(S, name, tag, ctype, extent) ctype name extent;
#define HARCORE_END(S) };
#include "runtime/harcore_steps.def"

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

// An optional step backend: a build that defines HARCORE_RUNTIME_BACKEND links a backend_run_step that the
// runtime asks first for every step (the firmware's -DHARCORE_KERNELS=cmsis-nn, firmware/backends/cmsis-nn/,
// runs steps on the real CMSIS-NN); it returns kBackendNotHandled for a step the runtime's own kernels run.
constexpr int32_t kBackendNotHandled = 1;
int32_t backend_run_step(const Step& s, int8_t* arena);

// Called after every step with the arena (debugging / per-layer capture); may be NULL.
typedef void (*StepObserver)(void* user, int32_t step_index, const int8_t* arena);

// Runs the model on one int8 input (input_size bytes) into output (output_size bytes). The arena must hold
// at least m.arena_size bytes and be 4-byte aligned; it is scratch only (nothing survives between calls).
int32_t invoke(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size);
int32_t invoke_observed(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size,
                        StepObserver observer, void* user);

}  // namespace rt
}  // namespace harcore
