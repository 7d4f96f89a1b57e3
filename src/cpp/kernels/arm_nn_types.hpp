// CMSIS-NN-style argument structs for harcore's int8 kernels (layout per docs/cmsis-nn.md §2).
//
// This header and the kernel sources compile unchanged for the Cortex-M33 firmware: fixed-width integer
// types only, no heap, no exceptions, no RTTI, no iostreams.
#pragma once

#include <stdint.h>

namespace harcore {
namespace kernels {

// Return codes of the kernels (and of the buffer-size getters for invalid arguments, see arm_nnfunctions.hpp).
enum arm_cmsis_nn_status : int32_t {
  ARM_CMSIS_NN_SUCCESS = 0,
  ARM_CMSIS_NN_ARG_ERROR = -1,
  ARM_CMSIS_NN_NO_IMPL_ERROR = -2,
  ARM_CMSIS_NN_FAILURE = -3,
};

// Tensor dimensions. Activations are NHWC (n = batch). Conv filters are OHWI: n = C_out, c = C_in per group.
// Depthwise filters are 1HWC (c = C_out). FC filters: n = accumulation depth, c = C_out.
struct cmsis_nn_dims {
  int32_t n;
  int32_t h;
  int32_t w;
  int32_t c;
};

// Stride / padding / dilation pair. Note: w first, as in CMSIS-NN.
struct cmsis_nn_tile {
  int32_t w;
  int32_t h;
};

struct cmsis_nn_activation {
  int32_t min;
  int32_t max;
};

struct cmsis_nn_conv_params {
  int32_t input_offset;   // -zp_in
  int32_t output_offset;  // +zp_out
  cmsis_nn_tile stride;
  cmsis_nn_tile padding;
  cmsis_nn_tile dilation;
  cmsis_nn_activation activation;
};

struct cmsis_nn_dw_conv_params {
  int32_t input_offset;
  int32_t output_offset;
  int32_t ch_mult;  // channel multiplier: C_out / C_in
  cmsis_nn_tile stride;
  cmsis_nn_tile padding;
  cmsis_nn_tile dilation;
  cmsis_nn_activation activation;
};

struct cmsis_nn_pool_params {
  cmsis_nn_tile stride;
  cmsis_nn_tile padding;
  cmsis_nn_activation activation;
};

// Caller-owned scratch buffer (see each kernel's *_get_buffer_size). size is in bytes.
struct cmsis_nn_context {
  void* buf;
  int32_t size;
};

struct cmsis_nn_fc_params {
  int32_t input_offset;   // -zp_in
  int32_t filter_offset;  // -zp_w (0 for TFLite int8 weights, which are symmetric)
  int32_t output_offset;  // +zp_out
  cmsis_nn_activation activation;
};

// One (multiplier, shift) per output channel; shift > 0 is a left shift (docs/cmsis-nn.md §3.1).
struct cmsis_nn_per_channel_quant_params {
  int32_t* multiplier;
  int32_t* shift;
};

struct cmsis_nn_per_tensor_quant_params {
  int32_t multiplier;
  int32_t shift;
};

// Per-tensor (one entry) or per-channel quantization, used by arm_fully_connected_wrapper_s8.
struct cmsis_nn_quant_params {
  int32_t* multiplier;
  int32_t* shift;
  int32_t is_per_channel;
};

}  // namespace kernels
}  // namespace harcore
