// C runtime start shared by the boards, and the few C/C++ library symbols a bare-metal link needs.
#include <stddef.h>
#include <stdint.h>

#include "board.hpp"
#include "console.hpp"

extern "C" {
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);
int main(void);

// Called by each board's Reset_Handler.
[[noreturn]] void harcore_crt_start(void) {
  // The FPU (CP10/CP11) is off at reset: the first hard-float instruction would fault.
  volatile uint32_t* cpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88u);
  *cpacr |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
  for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) (*f)();
  harcore::fw::board_init();
  const int rc = main();
  harcore::fw::flush();
  harcore::fw::board_exit(rc);
}

// newlib-nano's exit()/abort() end here; nosys.specs' own _exit spins forever.
[[noreturn]] void _exit(int code) {
  harcore::fw::flush();
  harcore::fw::board_exit(code);
}
int _write(int fd, const char* s, int n) {
  (void)fd;
  harcore::fw::flush();
  harcore::fw::board_write(s, static_cast<uint32_t>(n));
  return n;
}
void _init(void) {}
void _fini(void) {}
[[noreturn]] void __cxa_pure_virtual(void) {
  harcore::fw::put_line("FAULT pure virtual call");
  harcore::fw::flush();
  harcore::fw::board_exit(98);
}
}

// Nothing is heap-allocated; a virtual destructor still references these (libsupc++ is not linked).
void operator delete(void*) noexcept {}
void operator delete(void*, size_t) noexcept {}

// Fault vectors of both boards end here: a crash ends the run with status 99 instead of a hang.
extern "C" [[noreturn]] void harcore_fault(const char* what) {
  const uint32_t cfsr = *reinterpret_cast<volatile uint32_t*>(0xE000ED28u);
  harcore::fw::flush();
  harcore::fw::put("FAULT ");
  harcore::fw::put(what);
  harcore::fw::put(" CFSR=");
  harcore::fw::put_u32(cfsr);
  harcore::fw::put_char('\n');
  harcore::fw::flush();
  harcore::fw::board_exit(99);
}
