// Instruction-count markers. Under QEMU, firmware/tools/insn_between.c (a TCG plugin) counts the guest
// instructions executed between a call of perf_mark_begin and the next perf_mark_end; records are matched
// to labels by order, so the firmware prints a "perf <seq> <label>" line for each pair it times.
#pragma once

#include <stdint.h>

extern "C" {
void harcore_perf_begin(void);
void harcore_perf_end(void);
}
