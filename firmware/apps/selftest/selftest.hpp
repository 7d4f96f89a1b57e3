// Kernel self-test: the generated source (harcore.deploy.selftest) defines the cases, each a function
// that calls one kernel on inputs generated on the host; main prints every output as hex.
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace fw {

struct SelfTestCase {
  const char* name;
  int32_t output_size;  // bytes written to `out`
  int32_t (*run)(const kernels::cmsis_nn_context* ctx, int8_t* out);
};

}  // namespace fw
}  // namespace harcore

extern const harcore::fw::SelfTestCase harcore_selftest_cases[];
extern const int32_t harcore_selftest_count;
extern int8_t harcore_selftest_scratch[];
extern const int32_t harcore_selftest_scratch_size;
extern int8_t harcore_selftest_output[];
extern const int32_t harcore_selftest_output_size;
