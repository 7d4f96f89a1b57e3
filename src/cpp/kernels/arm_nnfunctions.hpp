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

// ==== kernels ========================================================================================
// Every kernel returns ARM_CMSIS_NN_SUCCESS or ARM_CMSIS_NN_ARG_ERROR (NULL pointers, non-positive or
// inconsistent dims, a scratch buffer missing or smaller than its getter says). Input reads are bounds
// checked against input_dims (positions outside are padding), so any output_dims are memory safe.
// Bias may be NULL (zero bias) everywhere, also for grouped convs (unlike CMSIS-NN, docs/cmsis-nn.md §7).

// ---- convolution: NHWC input, OHWI filter, per-channel quantization ---------------------------------
// Generic im2col conv (groups = C_in / filter C, dilation, zero-point padding). Needs ctx->buf of
// arm_convolve_s8_get_buffer_size() bytes (2-byte aligned): two int16 columns of offset-added inputs.
// (CMSIS-NN's transpose-conv "upscale" argument is not part of this signature.)
arm_cmsis_nn_status arm_convolve_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                    const cmsis_nn_per_channel_quant_params* quant_params,
                                    const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                    const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                    const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                    const cmsis_nn_dims* output_dims, int8_t* output_data);
// 1x1, stride 1, no padding: (N*H*W) x C_in matrix times the weights. Buffer-less with GCC.
arm_cmsis_nn_status arm_convolve_1x1_s8_fast(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                             const cmsis_nn_per_channel_quant_params* quant_params,
                                             const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                             const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                             const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                             const cmsis_nn_dims* output_dims, int8_t* output_data);
// 1x1, any stride, no padding. Buffer-less.
arm_cmsis_nn_status arm_convolve_1x1_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                        const cmsis_nn_per_channel_quant_params* quant_params,
                                        const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                        const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                        const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                        const cmsis_nn_dims* output_dims, int8_t* output_data);
// 1xN (input H = 1, filter H = 1): on pure C and DSP builds the generic conv (same buffer).
arm_cmsis_nn_status arm_convolve_1_x_n_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                          const cmsis_nn_per_channel_quant_params* quant_params,
                                          const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                          const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                          const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                          const cmsis_nn_dims* output_dims, int8_t* output_data);
// Dispatch of docs/cmsis-nn.md §4.1; ctx sized by arm_convolve_wrapper_s8_get_buffer_size().
arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context* ctx, const cmsis_nn_conv_params* conv_params,
                                            const cmsis_nn_per_channel_quant_params* quant_params,
                                            const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                            const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                            const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                            const cmsis_nn_dims* output_dims, int8_t* output_data);

// ---- depthwise: NHWC input, 1HWC filter (C_out = C_in * ch_mult), per-channel quantization ----------
// Generic (any ch_mult, batches, dilation). Buffer-less.
arm_cmsis_nn_status arm_depthwise_conv_s8(const cmsis_nn_context* ctx, const cmsis_nn_dw_conv_params* dw_conv_params,
                                          const cmsis_nn_per_channel_quant_params* quant_params,
                                          const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                          const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                          const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                          const cmsis_nn_dims* output_dims, int8_t* output_data);
// ch_mult 1, dilation 1. With ctx->buf (the DSP layout, arm_depthwise_conv_s8_opt_get_buffer_size_dsp()
// bytes, 2-byte aligned) it gathers an int16 column of C*KH*KW offset-added inputs per output pixel; a
// NULL buffer is accepted only where this build's getter says 0 (pure C).
arm_cmsis_nn_status arm_depthwise_conv_s8_opt(const cmsis_nn_context* ctx,
                                              const cmsis_nn_dw_conv_params* dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params* quant_params,
                                              const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                              const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                              const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                              const cmsis_nn_dims* output_dims, int8_t* output_data);
// 3x3 filter, ch_mult 1, dilation 1, pad_w <= 1 and pad_h <= 1. Buffer-less.
arm_cmsis_nn_status arm_depthwise_conv_3x3_s8(const cmsis_nn_context* ctx,
                                              const cmsis_nn_dw_conv_params* dw_conv_params,
                                              const cmsis_nn_per_channel_quant_params* quant_params,
                                              const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                              const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                              const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                              const cmsis_nn_dims* output_dims, int8_t* output_data);
// Dispatch of docs/cmsis-nn.md §4.2 (arm_nn_is_depthwise_conv_3x3 / _opt); ctx sized by the wrapper getter.
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context* ctx,
                                                  const cmsis_nn_dw_conv_params* dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params* quant_params,
                                                  const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                                  const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                                  const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                                  const cmsis_nn_dims* output_dims, int8_t* output_data);

// ---- fully connected: input N x K, weights [C_out][K]; filter_dims {n = K, c = C_out} -----------------
int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims* filter_dims);      // 0 on C / DSP
int32_t arm_fully_connected_s8_get_buffer_size_dsp(const cmsis_nn_dims* filter_dims);  // 0
arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context* ctx, const cmsis_nn_fc_params* fc_params,
                                           const cmsis_nn_per_tensor_quant_params* quant_params,
                                           const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                           const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                           const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                           const cmsis_nn_dims* output_dims, int8_t* output_data);
arm_cmsis_nn_status arm_fully_connected_per_channel_s8(const cmsis_nn_context* ctx, const cmsis_nn_fc_params* fc_params,
                                                       const cmsis_nn_per_channel_quant_params* quant_params,
                                                       const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                                       const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                                       const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                                       const cmsis_nn_dims* output_dims, int8_t* output_data);
// Per-channel if quant_params->is_per_channel, else per-tensor with multiplier[0] / shift[0].
arm_cmsis_nn_status arm_fully_connected_wrapper_s8(const cmsis_nn_context* ctx, const cmsis_nn_fc_params* fc_params,
                                                   const cmsis_nn_quant_params* quant_params,
                                                   const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                                   const cmsis_nn_dims* filter_dims, const int8_t* filter_data,
                                                   const cmsis_nn_dims* bias_dims, const int32_t* bias_data,
                                                   const cmsis_nn_dims* output_dims, int8_t* output_data);

// ---- pooling: NHWC, window clipped to the input (padding never counts) ------------------------------
arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context* ctx, const cmsis_nn_pool_params* pool_params,
                                    const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                    const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims,
                                    int8_t* output_data);
// With ctx->buf (DSP layout, 4*C bytes, 4-byte aligned) sums per channel into an int32 row; a NULL
// buffer is accepted only where this build's getter says 0 (pure C).
arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context* ctx, const cmsis_nn_pool_params* pool_params,
                                   const cmsis_nn_dims* input_dims, const int8_t* input_data,
                                   const cmsis_nn_dims* filter_dims, const cmsis_nn_dims* output_dims,
                                   int8_t* output_data);

// ---- elementwise add (same shapes; TFLite's left_shift scheme, docs/cmsis-nn.md §4.7) ----------------------
arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t* input_1_vect, const int8_t* input_2_vect,
                                           int32_t input_1_offset, int32_t input_1_mult, int32_t input_1_shift,
                                           int32_t input_2_offset, int32_t input_2_mult, int32_t input_2_shift,
                                           int32_t left_shift, int8_t* output, int32_t out_offset,
                                           int32_t out_mult, int32_t out_shift, int32_t out_activation_min,
                                           int32_t out_activation_max, int32_t block_size);

// ---- softmax (int8 in, int8 out with scale 1/256 and zero point -128, docs/cmsis-nn.md §4.6) ---------------
// Unlike CMSIS-NN (void) it returns ARG_ERROR for NULL pointers, num_rows < 0, row_size < 1 or a shift
// outside [0, 31].
arm_cmsis_nn_status arm_softmax_s8(const int8_t* input, int32_t num_rows, int32_t row_size, int32_t mult,
                                   int32_t shift, int32_t diff_min, int8_t* output);

// ---- standalone activation (TFLM's quantized RELU / RELU_N1_TO_1 / RELU6 op) --------------------------
// out = clamp(requantize(x + input_offset, mult, shift) + output_offset, act_min, act_max). With equal
// input and output quantization pass mult = 2^30, shift = 1 (the identity) and it is a plain clamp.
// Not CMSIS-NN's arm_relu_q7 / arm_relu6_s8: those clamp the raw integer at 0 (and 6) and ignore zero
// points, which is wrong for int8 models. input and output may be the same buffer.
arm_cmsis_nn_status arm_clamp_s8(const int8_t* input, int8_t* output, int32_t size, int32_t input_offset,
                                 int32_t output_offset, int32_t mult, int32_t shift, int32_t act_min,
                                 int32_t act_max);

}  // namespace kernels
}  // namespace harcore
