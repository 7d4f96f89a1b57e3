// Declarations of harcore's CMSIS-NN-equivalent int8 kernels and their scratch-buffer-size companions.
//
// Buffer-size getters follow CMSIS-NN's naming: the plain name answers for the build being compiled
// (DSP if __ARM_FEATURE_DSP == 1, else pure C); the `_dsp` variants answer for a Cortex-M33/M4/M7 DSP
// build (GCC) from any host, which is what the cost model uses. Sizes are in bytes.
// Unlike CMSIS-NN, the getters also guard their arithmetic: arguments that are non-positive where a
// size is required, or a size that does not fit in int32, give ARM_CMSIS_NN_ARG_ERROR (a negative value).
#pragma once

#include <stdint.h>

#include "kernels/arm_nn_types.hpp"

namespace harcore {
namespace kernels {

// ---- convolution (arm_convolve_wrapper_s8.cpp) -----------------------------------------------------
// Dispatch predicates of arm_convolve_wrapper_s8 (CMSIS-NN's arm_nn_is_convolve_* helpers).
// 1x1: no padding, 1x1 filter, dilation 1, not grouped (input C == filter C).
bool arm_nn_is_convolve_1x1(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                            const cmsis_nn_dims* filter_dims);
// 1x1 with stride 1: the "fast" matrix path.
bool arm_nn_is_convolve_1x1_fast(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                                 const cmsis_nn_dims* filter_dims);
// 1xN: input H = 1, filter H = 1, dilation_w = 1, (stride_w * C_in) % 4 == 0, not grouped.
bool arm_nn_is_convolve_1_x_n(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                              const cmsis_nn_dims* filter_dims);

// Generic im2col conv: two int16 columns of KH*KW*C_in (C_in = all input channels, also when grouped).
int32_t arm_convolve_s8_get_buffer_size(const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims);
// 1x1 fast path: 4*C_in only with Arm Compiler 6 on a DSP build (only then does the kernel use it).
int32_t arm_convolve_1x1_s8_fast_get_buffer_size(const cmsis_nn_dims* input_dims);
int32_t arm_convolve_1x1_s8_fast_get_buffer_size_dsp(const cmsis_nn_dims* input_dims);
// 1xN: on pure C and DSP builds this path calls the generic conv.
int32_t arm_convolve_1_x_n_s8_get_buffer_size(const cmsis_nn_conv_params* conv_params, const cmsis_nn_dims* input_dims,
                                              const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims);
int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params* conv_params,
                                                const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims,
                                                const cmsis_nn_dims* output_dims);
int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params* conv_params,
                                                    const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims,
                                                    const cmsis_nn_dims* output_dims);

// ---- depthwise convolution (arm_depthwise_conv_wrapper_s8.cpp) ------------------------------------
// True when the wrapper takes the 3x3 special case (ch_mult 1, batch 1, dilation 1, 3x3, pad <= 1).
bool arm_nn_is_depthwise_conv_3x3(const cmsis_nn_dw_conv_params* dw_conv_params, const cmsis_nn_dims* input_dims,
                                  const cmsis_nn_dims* filter_dims);
// True when the wrapper takes the `_opt` path (ch_mult 1, batch 1, dilation 1, not the 3x3 case).
bool arm_nn_is_depthwise_conv_opt(const cmsis_nn_dw_conv_params* dw_conv_params, const cmsis_nn_dims* input_dims,
                                  const cmsis_nn_dims* filter_dims);
// `_opt` path: DSP builds keep an int16 column of C*KH*KW values; pure C needs none.
int32_t arm_depthwise_conv_s8_opt_get_buffer_size(const cmsis_nn_dims* input_dims, const cmsis_nn_dims* filter_dims);
int32_t arm_depthwise_conv_s8_opt_get_buffer_size_dsp(const cmsis_nn_dims* input_dims,
                                                      const cmsis_nn_dims* filter_dims);
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params* dw_conv_params,
                                                      const cmsis_nn_dims* input_dims,
                                                      const cmsis_nn_dims* filter_dims,
                                                      const cmsis_nn_dims* output_dims);
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params* dw_conv_params,
                                                          const cmsis_nn_dims* input_dims,
                                                          const cmsis_nn_dims* filter_dims,
                                                          const cmsis_nn_dims* output_dims);

// ---- average pooling (arm_avgpool_s8.cpp) ---------------------------------------------------------
// DSP builds accumulate per channel in int32: 4*C bytes. Pure C needs none.
int32_t arm_avgpool_s8_get_buffer_size(int32_t dim_dst_width, int32_t ch_src);
int32_t arm_avgpool_s8_get_buffer_size_dsp(int32_t dim_dst_width, int32_t ch_src);

// ---- recurrent layers -----------------------------------------------------------------------------
// LSTM (int8 in/out, int16 gates and cell): see arm_lstm_unidirectional_s8.cpp for the layout. 7*H*batch.
int32_t arm_lstm_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size);
// GRU (harcore's int8 scheme): see arm_gru_unidirectional_s8.cpp for the layout. 9*H*batch.
int32_t arm_gru_unidirectional_s8_get_buffer_size(int32_t hidden_size, int32_t batch_size);

}  // namespace kernels
}  // namespace harcore
