// Kernel self-test image: runs every generated case once and prints
//   case <index> <name> status=<kernel status> insn_seq=<index> out=<hex>
// The output buffer is filled with a guard pattern first, so a kernel that writes too little shows.
#include <stdint.h>

#include "console.hpp"
#include "perf.hpp"
#include "selftest.hpp"

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
    harcore_perf_begin();
    const int32_t status = c.run(&ctx, harcore_selftest_output);
    harcore_perf_end();
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
  }
  put("done failures=");
  put_i32(failures);
  put_char('\n');
  return failures == 0 ? 0 : 1;
}
