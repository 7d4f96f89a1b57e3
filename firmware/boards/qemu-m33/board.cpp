// QEMU mps2-an505 console: ARM semihosting (default) or the CMSDK UART0; exit status via semihosting.
#include <stdint.h>

#include "board.hpp"

namespace harcore {
namespace fw {
namespace {

// M-profile semihosting: BKPT 0xAB, operation in r0, argument in r1.
uint32_t sh_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
constexpr uint32_t SYS_WRITE0 = 0x04, SYS_EXIT_EXTENDED = 0x20, ADP_STOPPED_APPLICATION_EXIT = 0x20026;

#if defined(HARCORE_CONSOLE_UART)
// CMSDK APB UART0, Secure alias. TX must be enabled in CTRL or TX-full never clears.
volatile uint32_t* const UART0 = reinterpret_cast<volatile uint32_t*>(0x50200000u);
enum { DATA = 0, STATE = 1, CTRL = 2, BAUDDIV = 4 };
#endif

}  // namespace

void board_init() {
#if defined(HARCORE_CONSOLE_UART)
  UART0[BAUDDIV] = 16;
  UART0[CTRL] = 1;
#endif
}

void board_write(const char* s, uint32_t n) {
#if defined(HARCORE_CONSOLE_UART)
  for (uint32_t i = 0; i < n; ++i) {
    while (UART0[STATE] & 1u) {
    }
    UART0[DATA] = static_cast<uint8_t>(s[i]);
  }
#else
  char chunk[65];
  while (n) {
    const uint32_t k = n < 64 ? n : 64;
    for (uint32_t i = 0; i < k; ++i) chunk[i] = s[i];
    chunk[k] = '\0';
    sh_call(SYS_WRITE0, chunk);
    s += k;
    n -= k;
  }
#endif
}

void board_exit(int32_t code) {
  // On 32-bit Arm only SYS_EXIT_EXTENDED carries a status; QEMU exits with code & 0xFF.
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, static_cast<uint32_t>(code)};
  sh_call(SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}

uint32_t board_cycles() { return 0; }  // DWT is not implemented by QEMU 7.2; count instructions instead

}  // namespace fw
}  // namespace harcore
