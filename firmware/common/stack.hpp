// Stack high-water mark measured on the target: paint the free part of the stack reserve with a pattern,
// run the code of interest, then find the deepest word that no longer holds the pattern. The figure is the
// whole program's stack depth at its deepest (startup and main's frames included), i.e. what the reserve
// (sections.ld) must hold. No interrupts are enabled, so nothing else writes below the stack pointer.
// Header-only so that every app can use it without a build change.
#pragma once

#include <stdint.h>

extern "C" {
extern uint32_t __stack_limit;  // sections.ld: lowest address of the stack reserve
extern uint32_t __stack_top;    // sections.ld: initial stack pointer
}

namespace harcore {
namespace fw {

// A word that neither small integers, int8 data nor code addresses make likely; a word the program stores
// equal to it at the deepest point would under-report by that word only.
constexpr uint32_t kStackPaint = 0xC5A5A55Cu;

inline uintptr_t stack_limit_address() { return reinterpret_cast<uintptr_t>(&__stack_limit); }
inline uintptr_t stack_top_address() { return reinterpret_cast<uintptr_t>(&__stack_top); }

// Bytes of the stack reserve (linker), as the firmware sees it.
inline uint32_t stack_reserved() { return static_cast<uint32_t>(stack_top_address() - stack_limit_address()); }

// Paints [limit, sp) of the caller: noinline so that this function's own frame lies above the painted range,
// and volatile stores so that the loop is not turned into a memset call (whose frame would lie inside it).
__attribute__((noinline)) inline void stack_paint() {
  uintptr_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (volatile uint32_t* p = reinterpret_cast<volatile uint32_t*>(stack_limit_address());
       reinterpret_cast<uintptr_t>(p) < sp; ++p) {
    *p = kStackPaint;
  }
}

// Bytes from the stack top down to the deepest overwritten word since the last stack_paint().
inline uint32_t stack_used() {
  uintptr_t a = stack_limit_address();
  const uintptr_t top = stack_top_address();
  while (a < top && *reinterpret_cast<const volatile uint32_t*>(a) == kStackPaint) a += 4;
  return static_cast<uint32_t>(top - a);
}

}  // namespace fw
}  // namespace harcore
