// harcore's int8 runtime: executes a lowered Model step by step (see harcore_runtime.hpp). No heap, no
// exceptions, no RTTI; compiles unchanged for the Cortex-M33 firmware.
#include "runtime/harcore_runtime.hpp"

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "kernels/arm_nn_batch_matmul.hpp"
#include "kernels/arm_nn_gru.hpp"
#include "kernels/arm_nn_lstm.hpp"
#include "kernels/arm_nnfunctions.hpp"
#include "kernels/arm_nnsupportfunctions.hpp"
#include "runtime/strided_binary.hpp"

namespace harcore {
namespace rt {

namespace k = harcore::kernels;

namespace {

// harcore_steps.def describes the kernel API structs (src/cpp/kernels/*.hpp) that the *Args structs nest,
// field by field; the emitter writes aggregate initializers in that order and the binding fills them by
// name. Checked here, for every compiler that builds the runtime (host and firmware): each described field
// has the declared type and sits right after the previous one, and the last one ends the struct, so a field
// added to, removed from or reordered in a kernel struct without the table fails the build.
namespace layout {

struct Field {
  size_t offset, size, align;
  bool same_type;
};

constexpr size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

template <size_t N>
constexpr bool described_exactly(const Field (&f)[N], size_t struct_size, size_t struct_align) {
  size_t end = 0;
  for (size_t i = 0; i < N; ++i) {
    if (!f[i].same_type || f[i].offset != align_up(end, f[i].align)) return false;
    end = f[i].offset + f[i].size;
  }
  return struct_size == align_up(end, struct_align);
}

#define HARCORE_KERNEL_STRUCT(S) constexpr Field S##_fields[] = {
#define HARCORE_KERNEL_FIELD(S, name, tag, ctype, extent)                          \
  {offsetof(k::S, name), sizeof(k::S::name), alignof(ctype),                       \
   std::is_same<decltype(k::S::name), ctype extent>::value},
#define HARCORE_KERNEL_END(S)                                                      \
  };                                                                               \
  static_assert(described_exactly(S##_fields, sizeof(k::S), alignof(k::S)),        \
                "harcore_steps.def: its fields of kernels::" #S " differ from the kernel header");
#include "runtime/harcore_steps.def"

}  // namespace layout


bool in_arena(int32_t offset, int32_t size, int32_t arena_size) {
  return offset >= 0 && size >= 0 && offset <= arena_size && size <= arena_size - offset;
}

void copy_bytes(int8_t* dst, const int8_t* src, int32_t n) {
  for (int32_t i = 0; i < n; ++i) dst[i] = src[i];
}

k::cmsis_nn_context scratch_ctx(const Step& s, int8_t* arena) {
  k::cmsis_nn_context ctx{nullptr, 0};
  if (s.scratch >= 0 && s.scratch_size > 0) {
    ctx.buf = arena + s.scratch;
    ctx.size = s.scratch_size;
  }
  return ctx;
}

int32_t run_step(const Step& s, int8_t* arena) {
#ifdef HARCORE_RUNTIME_BACKEND
  const int32_t backend_status = backend_run_step(s, arena);
  if (backend_status != kBackendNotHandled) return backend_status;
#endif
  const int8_t* in0 = arena + s.input0;
  const int8_t* in1 = s.input1 >= 0 ? arena + s.input1 : nullptr;
  int8_t* out = arena + s.output;
  k::cmsis_nn_context ctx = scratch_ctx(s, arena);
  switch (s.kind) {
    case kConv: {
      const ConvArgs& a = *static_cast<const ConvArgs*>(s.args);
      k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const k::cmsis_nn_dims bias_dims{1, 1, 1, a.output_dims.c};
      return k::arm_convolve_wrapper_s8(&ctx, &a.conv, &q, &a.input_dims, in0, &a.filter_dims, a.filter, &bias_dims,
                                        a.bias, &a.output_dims, out);
    }
    case kDepthwise: {
      const DepthwiseArgs& a = *static_cast<const DepthwiseArgs*>(s.args);
      k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const k::cmsis_nn_dims bias_dims{1, 1, 1, a.output_dims.c};
      return k::arm_depthwise_conv_wrapper_s8(&ctx, &a.dw, &q, &a.input_dims, in0, &a.filter_dims, a.filter,
                                              &bias_dims, a.bias, &a.output_dims, out);
    }
    case kFullyConnected: {
      const FullyConnectedArgs& a = *static_cast<const FullyConnectedArgs*>(s.args);
      k::cmsis_nn_per_channel_quant_params q{const_cast<int32_t*>(a.multiplier), const_cast<int32_t*>(a.shift)};
      const k::cmsis_nn_dims in_dims{a.batches, 1, 1, a.depth};
      const k::cmsis_nn_dims filter_dims{a.depth, 1, 1, a.out_features};
      const k::cmsis_nn_dims bias_dims{1, 1, 1, a.out_features};
      const k::cmsis_nn_dims out_dims{a.batches, 1, 1, a.out_features};
      return k::arm_fully_connected_per_channel_s8(&ctx, &a.fc, &q, &in_dims, in0, &filter_dims, a.filter, &bias_dims,
                                                   a.bias, &out_dims, out);
    }
    case kMaxPool:
    case kAvgPool: {
      const PoolArgs& a = *static_cast<const PoolArgs*>(s.args);
      return s.kind == kMaxPool
                 ? k::arm_max_pool_s8(&ctx, &a.pool, &a.input_dims, in0, &a.filter_dims, &a.output_dims, out)
                 : k::arm_avgpool_s8(&ctx, &a.pool, &a.input_dims, in0, &a.filter_dims, &a.output_dims, out);
    }
    case kAdd: {
      const AddArgs& a = *static_cast<const AddArgs*>(s.args);
      if (in1 == nullptr) return k::ARM_CMSIS_NN_ARG_ERROR;
      const k::cmsis_nn_add_params& p = a.p;
      if (a.subtract != 0) {
        return k::arm_elementwise_sub_s8(in0, in1, p.input1_offset, p.input1_mult, p.input1_shift, p.input2_offset,
                                         p.input2_mult, p.input2_shift, p.left_shift, out, p.output_offset,
                                         p.output_mult, p.output_shift, a.act_min, a.act_max, a.size);
      }
      return k::arm_elementwise_add_s8(in0, in1, p.input1_offset, p.input1_mult, p.input1_shift, p.input2_offset,
                                       p.input2_mult, p.input2_shift, p.left_shift, out, p.output_offset,
                                       p.output_mult, p.output_shift, a.act_min, a.act_max, a.size);
    }
    case kMul: {
      const MulArgs& a = *static_cast<const MulArgs*>(s.args);
      if (in1 == nullptr) in1 = a.input1_data;  // a constant operand lives in flash, not in the arena
      if (in1 == nullptr) return k::ARM_CMSIS_NN_ARG_ERROR;
      const k::cmsis_nn_mul_params& p = a.p;
      return strided_binary<true>(a, in0, in1, out, [&](const int8_t* x, const int8_t* y, int8_t* o, int32_t n) {
        return k::arm_elementwise_mul_s8(x, y, p.input1_offset, p.input2_offset, o, p.output_offset, p.output_mult,
                                         p.output_shift, a.act_min, a.act_max, n);
      });
    }
    case kAddBcast: {
      const AddBcastArgs& a = *static_cast<const AddBcastArgs*>(s.args);
      if (in1 == nullptr) in1 = a.input1_data;  // a constant operand lives in flash, not in the arena
      if (in1 == nullptr) return k::ARM_CMSIS_NN_ARG_ERROR;
      const k::cmsis_nn_add_params& p = a.p;
      return strided_binary(a, in0, in1, out, [&](const int8_t* x, const int8_t* y, int8_t* o, int32_t n) {
        return k::arm_elementwise_add_s8(x, y, p.input1_offset, p.input1_mult, p.input1_shift, p.input2_offset,
                                         p.input2_mult, p.input2_shift, p.left_shift, o, p.output_offset,
                                         p.output_mult, p.output_shift, a.act_min, a.act_max, n);
      });
    }
    case kSoftmax: {
      const SoftmaxArgs& a = *static_cast<const SoftmaxArgs*>(s.args);
      return k::arm_softmax_s8(in0, a.rows, a.row_size, a.mult, a.shift, a.diff_min, out);
    }
    case kReduceSum: {
      const ReduceSumArgs& a = *static_cast<const ReduceSumArgs*>(s.args);
      if (a.shift < -31 || a.shift > 30 || a.outer < 0 || a.reduce < 1 || a.inner < 0) return k::ARM_CMSIS_NN_ARG_ERROR;
      for (int32_t o = 0; o < a.outer; ++o) {
        for (int32_t i = 0; i < a.inner; ++i) {
          int32_t acc = 0;
          for (int32_t r = 0; r < a.reduce; ++r) {
            acc += static_cast<int32_t>(in0[(o * a.reduce + r) * a.inner + i]) + a.input_offset;
          }
          const int32_t v = k::arm_nn_requantize(acc, a.mult, a.shift) + a.output_offset;
          out[o * a.inner + i] = k::arm_nn_sat_s8(v);
        }
      }
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kClamp: {
      const ClampArgs& a = *static_cast<const ClampArgs*>(s.args);
      return k::arm_clamp_s8(in0, out, a.size, a.input_offset, a.output_offset, a.mult, a.shift, a.act_min, a.act_max);
    }
    case kLstm: {
      const LstmArgs& a = *static_cast<const LstmArgs*>(s.args);
      if (a.num_directions < 1 || a.num_directions > 2) return k::ARM_CMSIS_NN_ARG_ERROR;
      const int32_t st = k::arm_lstm_unidirectional_s8(&ctx, in0, &a.dir[0], out);
      if (st != k::ARM_CMSIS_NN_SUCCESS || a.num_directions == 1) return st;
      const k::cmsis_nn_lstm_params& b = a.dir[1];
      if (a.reversed_input < 0) return k::ARM_CMSIS_NN_ARG_ERROR;
      int8_t* rev = arena + a.reversed_input;
      for (int32_t t = 0; t < b.time_steps; ++t) {
        copy_bytes(rev + (b.time_steps - 1 - t) * b.input_size, in0 + t * b.input_size, b.input_size);
      }
      // backward half, in processing order (time reversed): the planner's layout of this tensor says so
      return k::arm_lstm_unidirectional_s8(&ctx, rev, &b, out + a.dir[0].time_steps * a.dir[0].hidden_size);
    }
    case kGru: {
      const GruArgs& a = *static_cast<const GruArgs*>(s.args);
      if (a.num_directions < 1 || a.num_directions > 2) return k::ARM_CMSIS_NN_ARG_ERROR;
      for (int32_t d = 0; d < a.num_directions; ++d) {
        const int32_t st = k::arm_gru_unidirectional_s8(&ctx, in0, &a.dir[d], out + d * a.dir[0].hidden_size);
        if (st != k::ARM_CMSIS_NN_SUCCESS) return st;
      }
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kCopy: {
      const CopyArgs& a = *static_cast<const CopyArgs*>(s.args);
      const int8_t* base = in0 + a.src_offset;
      int8_t* o = out;
      for (int32_t i0 = 0; i0 < a.extents[0]; ++i0) {
        for (int32_t i1 = 0; i1 < a.extents[1]; ++i1) {
          for (int32_t i2 = 0; i2 < a.extents[2]; ++i2) {
            const int8_t* src = base + i0 * a.strides[0] + i1 * a.strides[1] + i2 * a.strides[2];
            for (int32_t i3 = 0; i3 < a.extents[3]; ++i3) *o++ = src[i3 * a.strides[3]];
          }
        }
      }
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kGather: {
      const GatherArgs& a = *static_cast<const GatherArgs*>(s.args);
      for (int32_t i = 0; i < a.size; ++i) out[i] = in0[a.index[i]];
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kCopyInto: {
      const CopyIntoArgs& a = *static_cast<const CopyIntoArgs*>(s.args);
      // the writes must stay inside the step's output buffer: its last byte is dst_offset + sum((e - 1) * stride)
      int32_t last = a.dst_offset;
      for (int32_t d = 0; d < 4; ++d) {
        if (a.extents[d] < 1 || a.src_strides[d] < 0 || a.dst_strides[d] < 0) return kBadModel;
        last += (a.extents[d] - 1) * a.dst_strides[d];
      }
      if (a.dst_offset < 0 || a.src_offset < 0 || last >= s.output_size) return kBadModel;
      for (int32_t i0 = 0; i0 < a.extents[0]; ++i0) {
        for (int32_t i1 = 0; i1 < a.extents[1]; ++i1) {
          for (int32_t i2 = 0; i2 < a.extents[2]; ++i2) {
            const int8_t* src = in0 + a.src_offset + i0 * a.src_strides[0] + i1 * a.src_strides[1] +
                                i2 * a.src_strides[2];
            int8_t* dst = out + a.dst_offset + i0 * a.dst_strides[0] + i1 * a.dst_strides[1] + i2 * a.dst_strides[2];
            for (int32_t i3 = 0; i3 < a.extents[3]; ++i3) dst[i3 * a.dst_strides[3]] = src[i3 * a.src_strides[3]];
          }
        }
      }
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kLeakyRelu: {
      const LeakyReluArgs& a = *static_cast<const LeakyReluArgs*>(s.args);
      for (int32_t i = 0; i < a.size; ++i) {
        const int32_t x = in0[i] + a.input_offset;
        int32_t y = a.output_offset + (x >= 0 ? k::arm_nn_requantize(x, a.identity_mult, a.identity_shift)
                                              : k::arm_nn_requantize(x, a.alpha_mult, a.alpha_shift));
        out[i] = static_cast<int8_t>(y < -128 ? -128 : (y > 127 ? 127 : y));
      }
      return k::ARM_CMSIS_NN_SUCCESS;
    }
    case kBatchMatMul: {
      const BatchMatMulArgs& a = *static_cast<const BatchMatMulArgs*>(s.args);
      if (in1 == nullptr) return k::ARM_CMSIS_NN_ARG_ERROR;
      return k::arm_batch_matmul_s8(&ctx, &a.bmm, &a.quant, &a.lhs_dims, in0, &a.rhs_dims, in1, &a.output_dims, out);
    }
    case kTanh:
    case kLogistic: {
      const LutArgs& a = *static_cast<const LutArgs*>(s.args);
      return s.kind == kTanh ? k::arm_tanh_s8(in0, out, a.size, &a.p) : k::arm_logistic_s8(in0, out, a.size, &a.p);
    }
    default:
      return kBadModel;
  }
}

}  // namespace

int32_t invoke_observed(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size,
                        StepObserver observer, void* user) {
  if (input == nullptr || output == nullptr || arena == nullptr) return kBadArgument;
  if ((reinterpret_cast<uintptr_t>(arena) & 3u) != 0 || arena_size < m.arena_size) return kBadArgument;
  if (m.format_version != kFormatVersion || m.num_steps < 0 || (m.num_steps > 0 && m.steps == nullptr) ||
      m.arena_size < 0 || !in_arena(m.input_offset, m.input_size, m.arena_size) ||
      !in_arena(m.output_offset, m.output_size, m.arena_size)) {
    return kBadModel;
  }
  copy_bytes(arena + m.input_offset, input, m.input_size);
  for (int32_t i = 0; i < m.num_steps; ++i) {
    const Step& s = m.steps[i];
    if (s.args == nullptr || !in_arena(s.input0, 0, m.arena_size) || !in_arena(s.output, s.output_size, m.arena_size) ||
        (s.input1 >= 0 && !in_arena(s.input1, 0, m.arena_size)) ||
        (s.scratch >= 0 && !in_arena(s.scratch, s.scratch_size, m.arena_size))) {
      return kBadModel;
    }
    const int32_t st = run_step(s, arena);
    if (st == kBadModel) return kBadModel;
    if (st != k::ARM_CMSIS_NN_SUCCESS) return kKernelError - i;
    if (observer != nullptr) observer(user, i, arena);
  }
  copy_bytes(output, arena + m.output_offset, m.output_size);
  return kOk;
}

int32_t invoke(const Model& m, const int8_t* input, int8_t* output, int8_t* arena, int32_t arena_size) {
  return invoke_observed(m, input, output, arena, arena_size, nullptr, nullptr);
}

}  // namespace rt
}  // namespace harcore
