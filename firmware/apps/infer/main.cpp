// Model harness: runs the deployed int8 model on every embedded window and prints
//   out <window> status=<invoke status> cycles=<DWT cycles, 0 under QEMU> y=<int8 outputs as hex>
// Each invoke is bracketed by the instruction-count markers (one plugin record per window, in order).
// With harcore_harness_profile_steps, window 0 runs once more through invoke_observed with a marker pair
// per step ("step" lines): record k covers step k (step 0 also the input copy), the last one the output copy.
// The stack is painted before every invoke and scanned after it; the deepest mark over all windows is printed
//   stack infer used=<bytes> reserved=<bytes>
// (the observed profiling pass, which prints from inside the runtime, is not part of it).
#include <stdint.h>

#include "board.hpp"
#include "console.hpp"
#include "harness.hpp"
#include "perf.hpp"
#ifdef HARCORE_KERNELS_CMSIS_NN
#include "backend.hpp"  // firmware/backends/cmsis-nn: the steps on the real CMSIS-NN
#endif
#include "stack.hpp"

using harcore::fw::put;
using harcore::fw::put_char;
using harcore::fw::put_i32;
using harcore::fw::put_u32;

namespace {

uint32_t g_last_cycles = 0;

void on_step(void* user, int32_t step_index, const int8_t* arena) {
  (void)user;
  (void)arena;
  harcore_perf_end();
  const uint32_t now = harcore::fw::board_cycles();
  put("step ");
  put_i32(step_index);
  put(" kind=");
  put_i32(harcore_model.steps[step_index].kind);
  put(" cycles=");
  put_u32(now - g_last_cycles);
  put_char('\n');
  g_last_cycles = harcore::fw::board_cycles();
  harcore_perf_begin();
}

}  // namespace

int main() {
  const harcore::rt::Model& m = harcore_model;
  put("harcore infer windows=");
  put_i32(harcore_harness_windows);
  put(" steps=");
  put_i32(m.num_steps);
  put(" arena=");
  put_i32(harcore_model_arena_size);
  put_char('\n');
  if (harcore_model_arena_size > harcore_arena_capacity || m.arena_size > harcore_arena_capacity) {
    put("error: the model needs a larger arena than the harness reserved\n");
    return 2;
  }
#ifdef HARCORE_KERNELS_CMSIS_NN
  if (harcore::rt::backend_report(m) != 0) return 4;  // which library runs each step, before any is timed
#endif
  if (m.input_size != harcore_harness_input_size || m.output_size != harcore_harness_output_size) {
    put("error: the model's input/output sizes differ from the harness windows\n");
    return 3;
  }
  int32_t failures = 0;
  uint32_t stack_used = 0;
  for (int32_t w = 0; w < harcore_harness_windows; ++w) {
    const int8_t* x = harcore_harness_inputs + w * harcore_harness_input_size;
    harcore::fw::stack_paint();
    const uint32_t c0 = harcore::fw::board_cycles();
    harcore_perf_begin();
    const int32_t status = harcore::rt::invoke(m, x, harcore_harness_output, harcore_arena, harcore_arena_capacity);
    harcore_perf_end();
    const uint32_t c1 = harcore::fw::board_cycles();
    const uint32_t used = harcore::fw::stack_used();
    if (used > stack_used) stack_used = used;
    if (status != 0) ++failures;
    put("out ");
    put_i32(w);
    put(" status=");
    put_i32(status);
    put(" cycles=");
    put_u32(c1 - c0);
    put(" y=");
    harcore::fw::put_hex_s8(harcore_harness_output, harcore_harness_output_size);
    put_char('\n');
  }
  put("stack infer used=");
  put_u32(stack_used);
  put(" reserved=");
  put_u32(harcore::fw::stack_reserved());
  put_char('\n');
  if (harcore_harness_profile_steps && harcore_harness_windows > 0) {
    put("profile window=0\n");
    g_last_cycles = harcore::fw::board_cycles();
    harcore_perf_begin();
    const int32_t status = harcore::rt::invoke_observed(m, harcore_harness_inputs, harcore_harness_output,
                                                        harcore_arena, harcore_arena_capacity, &on_step, nullptr);
    harcore_perf_end();
    put("profile end status=");
    put_i32(status);
    put_char('\n');
    if (status != 0) ++failures;
  }
  put("done failures=");
  put_i32(failures);
  put_char('\n');
  return failures == 0 ? 0 : 1;
}
