// Kernel self-test image: runs every generated case once and prints
//   case <index> <name> status=<kernel status> insn_seq=<index> out=<hex>
//   stack case <index> used=<bytes> reserved=<bytes>
// The output buffer is filled with a guard pattern first, so a kernel that writes too little shows. The stack is
// painted before each case and scanned after it (the deepest mark of the program while the case ran).
#include <stdint.h>

#include "console.hpp"
#include "perf.hpp"
#include "selftest.hpp"
#include "stack.hpp"

using harcore::fw::put;
using harcore::fw::put_char;
using harcore::fw::put_i32;

int main() {
  put("harcore selftest cases=");
  put_i32(harcore_selftest_count);
  put_char('\n');
  int32_t failures = 0;
  for (int32_t i = 0; i < harcore_selftest_count; ++i) {
    const harcore::fw::SelfTestCase& c = harcore_selftest_cases[i];
    if (c.output_size > harcore_selftest_output_size) {
      put("case ");
      put_i32(i);
      put(" output larger than the buffer\n");
      ++failures;
      continue;
    }
    for (int32_t j = 0; j < c.output_size; ++j) harcore_selftest_output[j] = static_cast<int8_t>(0x5A);
    const harcore::kernels::cmsis_nn_context ctx{harcore_selftest_scratch, harcore_selftest_scratch_size};
    harcore::fw::stack_paint();
    harcore_perf_begin();
    const int32_t status = c.run(&ctx, harcore_selftest_output);
    harcore_perf_end();
    const uint32_t stack_used = harcore::fw::stack_used();
    if (status != 0) ++failures;
    put("case ");
    put_i32(i);
    put_char(' ');
    put(c.name);
    put(" status=");
    put_i32(status);
    put(" out=");
    harcore::fw::put_hex_s8(harcore_selftest_output, c.output_size);
    put_char('\n');
    put("stack case ");
    put_i32(i);
    put(" used=");
    harcore::fw::put_u32(stack_used);
    put(" reserved=");
    harcore::fw::put_u32(harcore::fw::stack_reserved());
    put_char('\n');
  }
  put("done failures=");
  put_i32(failures);
  put_char('\n');
  return failures == 0 ? 0 : 1;
}
