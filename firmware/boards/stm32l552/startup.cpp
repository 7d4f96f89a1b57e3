// Startup of the NUCLEO-L552ZE-Q image (TrustZone disabled, boot from 0x08000000). No interrupt is
// enabled, so the table holds only the 16 system vectors.
#include <stdint.h>

#include "startup_vectors.inc"

extern "C" [[noreturn]] void Reset_Handler(void) { harcore_crt_start(); }

extern "C" const void* const harcore_vectors[16];  // external linkage: tools and tests look it up by name
__attribute__((section(".isr_vector"), used)) const void* const harcore_vectors[16] = {HARCORE_SYSTEM_VECTORS};
