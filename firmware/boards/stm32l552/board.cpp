// NUCLEO-L552ZE-Q console: LPUART1 on PG7 (TX) / PG8 (RX), AF8, wired to the ST-LINK virtual COM port;
// 115200 8N1 clocked from HSI16. Register map from RM0438 (non-secure aliases, TrustZone off).
// Built and linked in CI; not yet exercised on a board (QEMU has no STM32L5 machine).
#include <stdint.h>

#include "board.hpp"

namespace harcore {
namespace fw {
namespace {

inline volatile uint32_t& reg(uint32_t addr) { return *reinterpret_cast<volatile uint32_t*>(addr); }

constexpr uint32_t RCC = 0x40021000u, PWR = 0x40007000u, GPIOG = 0x42021800u, LPUART1 = 0x40008000u;
constexpr uint32_t RCC_CR = RCC + 0x00, RCC_AHB2ENR = RCC + 0x4C, RCC_APB1ENR1 = RCC + 0x58,
                   RCC_APB1ENR2 = RCC + 0x5C, RCC_CCIPR1 = RCC + 0x88;
constexpr uint32_t PWR_CR2 = PWR + 0x04;
constexpr uint32_t GPIO_MODER = 0x00, GPIO_AFRL = 0x20, GPIO_AFRH = 0x24;
constexpr uint32_t LPUART_CR1 = LPUART1 + 0x00, LPUART_BRR = LPUART1 + 0x0C, LPUART_ISR = LPUART1 + 0x1C,
                   LPUART_TDR = LPUART1 + 0x28;
constexpr uint32_t DEMCR = 0xE000EDFCu, DWT_CTRL = 0xE0001000u, DWT_CYCCNT = 0xE0001004u;

}  // namespace

void board_init() {
  reg(RCC_CR) |= 1u << 8;  // HSION
  while (!(reg(RCC_CR) & (1u << 10))) {
  }
  reg(RCC_APB1ENR1) |= 1u << 28;  // PWREN
  reg(PWR_CR2) |= 1u << 9;        // IOSV: port G pins 2..15 sit on VDDIO2
  reg(RCC_AHB2ENR) |= 1u << 6;    // GPIOGEN
  reg(RCC_APB1ENR2) |= 1u << 0;   // LPUART1EN
  reg(RCC_CCIPR1) = (reg(RCC_CCIPR1) & ~(3u << 10)) | (2u << 10);  // LPUART1SEL = HSI16
  const uint32_t g = GPIOG;
  reg(g + GPIO_MODER) = (reg(g + GPIO_MODER) & ~((3u << 14) | (3u << 16))) | (2u << 14) | (2u << 16);
  reg(g + GPIO_AFRL) = (reg(g + GPIO_AFRL) & ~(0xFu << 28)) | (8u << 28);
  reg(g + GPIO_AFRH) = (reg(g + GPIO_AFRH) & ~0xFu) | 8u;
  reg(LPUART_BRR) = 35556u;  // 256 * 16 MHz / 115200
  reg(LPUART_CR1) = (1u << 3) | (1u << 0);  // TE, UE
  // Cycle counter for per-inference timing on the chip.
  reg(DEMCR) |= 1u << 24;
  reg(DWT_CYCCNT) = 0;
  reg(DWT_CTRL) |= 1u;
}

void board_write(const char* s, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    while (!(reg(LPUART_ISR) & (1u << 7))) {  // TXE / TXFNF
    }
    reg(LPUART_TDR) = static_cast<uint8_t>(s[i]);
  }
}

void board_exit(int32_t code) {
  // No host to return a status to (semihosting without a debugger would fault): report and stop.
  static const char msg[] = "harcore: exit ";
  board_write(msg, sizeof msg - 1);
  char d[12];
  int n = 0;
  uint32_t v = code < 0 ? 0u - static_cast<uint32_t>(code) : static_cast<uint32_t>(code);
  do {
    d[n++] = static_cast<char>('0' + v % 10u);
    v /= 10u;
  } while (v);
  if (code < 0) board_write("-", 1);
  while (n) board_write(&d[--n], 1);
  board_write("\n", 1);
  for (;;) __asm__ volatile("wfi");
}

uint32_t board_cycles() { return reg(DWT_CYCCNT); }

}  // namespace fw
}  // namespace harcore
