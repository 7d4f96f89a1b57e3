// Startup of the QEMU mps2-an505 image: the CPU starts in Secure state and reads the vector table
// at 0x10000000 (the start of FLASH in link.ld). No interrupts are used, so only system vectors.
#include <stdint.h>

#include "startup_vectors.inc"

extern "C" [[noreturn]] void Reset_Handler(void) { harcore_crt_start(); }

extern "C" const void* const harcore_vectors[16];  // external linkage: tools and tests look it up by name
__attribute__((section(".isr_vector"), used)) const void* const harcore_vectors[16] = {HARCORE_SYSTEM_VECTORS};
