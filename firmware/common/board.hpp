// What a board provides to the shared firmware code (boards/<board>/board.cpp + startup.cpp).
#pragma once

#include <stdint.h>

namespace harcore {
namespace fw {

// Clocks and the console; called once before main.
void board_init();
// Sends n bytes to the console (a semihosting or UART console on qemu-m33, LPUART1 on the STM32L552).
void board_write(const char* s, uint32_t n);
// Ends the program with an exit status (QEMU's exit status via semihosting; on a board: stop here).
[[noreturn]] void board_exit(int32_t code);
// A free-running cycle counter (DWT CYCCNT on the chip; QEMU does not implement it and reads 0).
uint32_t board_cycles();

}  // namespace fw
}  // namespace harcore
