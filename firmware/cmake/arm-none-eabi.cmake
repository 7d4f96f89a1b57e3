# Cross toolchain for the Cortex-M33 targets: Debian's gcc-arm-none-eabi 12.2 with newlib-nano.
# Why each flag: docs/firmware.md (the table of firmware/ files).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "arm-none-eabi-size")
set(CMAKE_OBJCOPY arm-none-eabi-objcopy CACHE FILEPATH "arm-none-eabi-objcopy")

# Without the 1.5 GB libstdc++ multilib package a linked C++ test program cannot be built; the
# compiler checks only need to compile.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

# HARCORE_M33_CPU: cortex-m33 (with the DSP extension, as every STM32 M33 part has) or cortex-m33+nodsp,
# which builds the kernels' plain C paths for the same core (how the self-test compares both).
set(HARCORE_M33_CPU "cortex-m33" CACHE STRING "-mcpu value: cortex-m33 or cortex-m33+nodsp")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES HARCORE_M33_CPU)
set(HARCORE_M33_FLAGS "-mcpu=${HARCORE_M33_CPU} -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16")
# -ffp-contract=off: GCC would otherwise fuse a*b+c into vfma.f32 on the M33 and round differently
# from the host. No -ffreestanding: it implies -fno-builtin and turns memcpy of 4 bytes into a call.
set(CMAKE_C_FLAGS_INIT "${HARCORE_M33_FLAGS} -ffp-contract=off -ffunction-sections -fdata-sections")
set(CMAKE_CXX_FLAGS_INIT "${HARCORE_M33_FLAGS} -ffp-contract=off -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit")
set(CMAKE_ASM_FLAGS_INIT "${HARCORE_M33_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${HARCORE_M33_FLAGS} -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,--print-memory-usage")
# The Release flags are set as cache entries here, before project(): CMake's GNU module would otherwise
# append its own "-O3 -DNDEBUG" to any *_FLAGS_RELEASE_INIT (the build then compiled at "-O2 -O3").
# A value given with -D on the command line still wins.
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "C flags of the Release build")
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "C++ flags of the Release build")
set(CMAKE_ASM_FLAGS_RELEASE "" CACHE STRING "ASM flags of the Release build")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
