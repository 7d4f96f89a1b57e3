# Cross toolchain for the Cortex-M33 targets: Debian's gcc-arm-none-eabi 12.2 with newlib-nano.
# Verified facts behind each line: ../shared/notes/firmware-qemu.md §7 and §9.
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

set(HARCORE_M33_FLAGS "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16")
# -ffp-contract=off: GCC would otherwise fuse a*b+c into vfma.f32 on the M33 and round differently
# from the host. No -ffreestanding: it implies -fno-builtin and turns memcpy of 4 bytes into a call.
set(CMAKE_C_FLAGS_INIT "${HARCORE_M33_FLAGS} -ffp-contract=off -ffunction-sections -fdata-sections")
set(CMAKE_CXX_FLAGS_INIT "${HARCORE_M33_FLAGS} -ffp-contract=off -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit")
set(CMAKE_ASM_FLAGS_INIT "${HARCORE_M33_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${HARCORE_M33_FLAGS} -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,--print-memory-usage")
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2")
set(CMAKE_CXX_FLAGS_RELEASE_INIT "-O2")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
