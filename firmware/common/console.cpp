#include "console.hpp"

#include "board.hpp"

namespace harcore {
namespace fw {
namespace {
// One buffered line: semihosting costs a trap per call, so bytes go out a line (or 240 bytes) at a time.
char g_buf[256];
uint32_t g_len = 0;
}  // namespace

void flush() {
  if (g_len) board_write(g_buf, g_len);
  g_len = 0;
}

void put_char(char c) {
  g_buf[g_len++] = c;
  if (c == '\n' || g_len >= 240) flush();
}

void put(const char* s) {
  while (*s) put_char(*s++);
}

void put_line(const char* s) {
  put(s);
  put_char('\n');
}

void put_u32(uint32_t v) {
  char d[10];
  int n = 0;
  do {
    d[n++] = static_cast<char>('0' + v % 10u);
    v /= 10u;
  } while (v);
  while (n) put_char(d[--n]);
}

void put_i32(int32_t v) {
  if (v < 0) {
    put_char('-');
    put_u32(0u - static_cast<uint32_t>(v));
  } else {
    put_u32(static_cast<uint32_t>(v));
  }
}

void put_hex_s8(const int8_t* data, int32_t n) {
  static const char digits[] = "0123456789abcdef";
  for (int32_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<uint8_t>(data[i]);
    put_char(digits[b >> 4]);
    put_char(digits[b & 15u]);
  }
}

}  // namespace fw
}  // namespace harcore
