// Model harness: what `harcore deploy` generates next to the model source (harness_data.cpp) —
// N real test windows, quantized with the model's input qparams, and the one static arena.
#pragma once

#include <stdint.h>

#include "runtime/harcore_runtime.hpp"

extern const harcore::rt::Model harcore_model;       // model.cpp (harcore.quant.lower(g).emit_cpp())
extern const int32_t harcore_model_arena_size;

extern const int32_t harcore_harness_windows;
extern const int32_t harcore_harness_input_size;     // bytes per window
extern const int32_t harcore_harness_output_size;    // bytes per window
extern const int8_t harcore_harness_inputs[];        // windows x input_size
extern const int32_t harcore_harness_profile_steps;  // 1: time every step of window 0 once more
extern int8_t harcore_arena[];
extern const int32_t harcore_arena_capacity;
extern int8_t harcore_harness_output[];
