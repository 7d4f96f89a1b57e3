// The CMSIS-NN step backend of the firmware option -DHARCORE_KERNELS=cmsis-nn (cmsis_nn_steps.cpp): what the
// model harness asks it before the runs. backend_run_step itself is declared in runtime/harcore_runtime.hpp.
#pragma once

#include <stdint.h>

#include "runtime/harcore_runtime.hpp"

namespace harcore {
namespace rt {

// CMSIS-NN's function that runs the step, or nullptr when harcore's kernel runs it (no CMSIS-NN function).
const char* backend_step_name(const Step& s);

// Prints one line per step, "backend <i> kind=<k> cmsis-nn <function> scratch=<bytes> in=<arena|pool|none>"
// (where CMSIS-NN's buffer goes: the step's arena scratch, the static pool, or neither) or
// "backend <i> kind=<k> harcore", and an "error:" line for each step whose buffer fits neither; returns how
// many do not fit.
int32_t backend_report(const Model& m);

}  // namespace rt
}  // namespace harcore
