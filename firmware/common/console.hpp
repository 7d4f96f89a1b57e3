// Line-buffered console output with integer and hex formatting (no printf: nano printf adds ~5 KB
// and the outputs are integers anyway).
#pragma once

#include <stdint.h>

namespace harcore {
namespace fw {

void put(const char* s);
void put_char(char c);
void put_i32(int32_t v);
void put_u32(uint32_t v);
// Two lowercase hex digits per byte, no separators: the host parses it with bytes.fromhex.
void put_hex_s8(const int8_t* data, int32_t n);
void put_line(const char* s);
void flush();

}  // namespace fw
}  // namespace harcore
