"""The host-only SIMD paths of the s8 conv / FC kernels (src/cpp/kernels/arm_nn_host_gemm.hpp) against the
portable loops of the same kernels, bit for bit.

One build holds both: the portable loops are what the firmware compiles and what tests/test_kernels_oracle.py
checks against TFLM; setting HARCORE_PORTABLE_KERNELS switches the host paths off for a process. Every case is
run here (host paths on, where the CPU has AVX2) and in a subprocess with the variable set, and not one output
value may differ. The cases cover what the host paths special-case: channel counts around the 8/16-value
vector steps and the 3x4 register blocks, border pixels with clipped windows, strides, asymmetric padding,
2-D filters with dilated rows, offsets at both ends of their range, filter offsets (FC), per-tensor and
per-channel requantization with left and right shifts, clamped activations, and the shapes that must fall
back to the portable loop (grouped, dilated in x, short rows).

Run as a script (`python tests/test_host_kernels.py OUT.npz`) it writes every case's output to OUT.npz.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harcore._core import kernels as K

pytestmark = pytest.mark.sanitize


def _shift_for(k: int, rng: np.random.Generator) -> int:
    # a sum of k random products (std ~ 5500 sqrt(k)) lands near +-60 after requantization (outputs vary)
    return int(np.round(np.log2(60.0 / (5500.0 * np.sqrt(max(k, 1))))) + rng.integers(-1, 2))


def _quant(rng: np.random.Generator, c_out: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=c_out, dtype=np.int64).astype(np.int32)
    shift = np.array([_shift_for(k, rng) for _ in range(c_out)], np.int32)
    shift[rng.random(c_out) < 0.1] = 1  # a few left shifts (saturating outputs)
    return mult, shift


def _int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    flat = a.reshape(-1)
    if flat.size > 4:
        flat[:2] = -128  # the ends of the range
        flat[2:4] = 127
    return a


def conv_cases() -> list[tuple[str, tuple, dict]]:
    """(kernel name, positional args, keyword args) for the conv kernels."""
    rng = np.random.default_rng(20261124)
    cases = []
    # (N, H, W, C_in, C_out, KH, KW, stride (h, w), dilation (h, w), groups)
    shapes = [
        (1, 1, 128, 9, 64, 1, 3, (1, 1), (1, 1), 1),     # the CNN's first layer (K = 27: 16 + 8 + 3 tail)
        (1, 1, 40, 64, 13, 1, 3, (1, 1), (1, 1), 1),     # C_out not a multiple of 4
        (2, 1, 33, 16, 16, 1, 5, (1, 1), (1, 1), 1),     # rows not a multiple of 3, two batches
        (1, 1, 17, 17, 7, 1, 3, (1, 2), (1, 1), 1),      # odd C_in, stride 2
        (1, 1, 20, 8, 5, 1, 4, (1, 3), (1, 1), 1),       # even filter, stride 3
        (1, 1, 6, 32, 9, 1, 7, (1, 1), (1, 1), 1),       # filter wider than the padded interior
        (1, 1, 2, 24, 6, 1, 5, (1, 1), (1, 1), 1),       # every pixel is a border pixel
        (1, 6, 7, 8, 10, 3, 3, (1, 1), (1, 1), 1),       # 2-D
        (2, 9, 5, 12, 6, 3, 2, (2, 1), (2, 1), 1),       # 2-D, dilated rows, stride in y
        (1, 12, 9, 1, 4, 5, 1, (1, 1), (1, 1), 1),       # TinierHAR's 5x1 on one channel: portable (row < 8)
        (1, 1, 30, 16, 8, 1, 3, (1, 1), (1, 2), 1),      # dilated in x: portable
        (1, 1, 30, 16, 8, 1, 3, (1, 1), (1, 1), 2),      # grouped: portable
        (1, 20, 3, 4, 4, 17, 1, (1, 1), (1, 1), 1),      # 17 filter rows: more than the host path takes
    ]
    for n, h, w, c_in, c_out, kh, kw, stride, dil, groups in shapes:
        for variant in range(3):
            pad_h = 0 if kh == 1 else int(rng.integers(0, kh))
            pad_w = 0 if kw == 1 else int(rng.integers(0, kw))
            extra_h = int(rng.integers(0, pad_h + 1))  # bottom/right pad implied by the output shape
            extra_w = int(rng.integers(0, pad_w + 1))
            h_out = (h + pad_h + extra_h - dil[0] * (kh - 1) - 1) // stride[0] + 1
            w_out = (w + pad_w + extra_w - dil[1] * (kw - 1) - 1) // stride[1] + 1
            if h_out < 1 or w_out < 1:
                continue
            x = _int8(rng, (n, h, w, c_in))
            wt = _int8(rng, (c_out, kh, kw, c_in // groups))
            bias = None if variant == 2 else rng.integers(-(1 << 12), 1 << 12, size=c_out).astype(np.int32)
            mult, shift = _quant(rng, c_out, kh * kw * c_in // groups)
            kw_args = dict(
                input_offset=[128, -127, int(rng.integers(-127, 129))][variant],
                output_offset=int(rng.integers(-128, 128)),
                stride=stride, padding=(pad_h, pad_w), dilation=dil,
                activation=[(-128, 127), (0, 127), (-100, 90)][variant],
                output_shape=(h_out, w_out),
            )
            cases.append(("convolve_s8", (x, wt, bias, mult, shift), kw_args))
            if kh == 1 and groups == 1 and dil == (1, 1) and h == 1 and (stride[1] * c_in) % 4 == 0:
                cases.append(("convolve_1_x_n_s8", (x, wt, bias, mult, shift), kw_args))
    # 1x1 (strided and stride 1) through their own kernels and the wrapper; C_in < 8 takes the short-row kernel
    for n, h, w, c_in, c_out, stride in [(1, 1, 64, 16, 12, (1, 1)), (2, 3, 11, 9, 5, (1, 1)),
                                         (1, 5, 9, 24, 7, (2, 2)), (1, 1, 50, 8, 8, (1, 3)), (1, 2, 9, 4, 8, (1, 1)),
                                         (1, 128, 9, 1, 4, (1, 1)), (1, 7, 3, 2, 9, (1, 1)), (2, 5, 5, 7, 4, (2, 1)),
                                         (1, 1, 1, 3, 4, (1, 1))]:
        x = _int8(rng, (n, h, w, c_in))
        wt = _int8(rng, (c_out, 1, 1, c_in))
        bias = rng.integers(-(1 << 12), 1 << 12, size=c_out).astype(np.int32)
        mult, shift = _quant(rng, c_out, c_in)
        out_shape = ((h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1)
        kw_args = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                       stride=stride, output_shape=out_shape)
        name = "convolve_1x1_s8_fast" if stride == (1, 1) else "convolve_1x1_s8"
        cases.append((name, (x, wt, bias, mult, shift), kw_args))
        cases.append(("convolve_wrapper_s8", (x, wt, bias, mult, shift), kw_args))
    return cases


def dw_cases() -> list[tuple[str, tuple, dict]]:
    """Depthwise: the host path takes channel multiplier 1, stride_w 1, dilation_w 1, C <= 64, <= 16 taps."""
    rng = np.random.default_rng(11)
    cases = []
    # (N, H, W, C, ch_mult, KH, KW, stride (h, w), dilation (h, w))
    shapes = [
        (1, 64, 9, 4, 1, 5, 1, (1, 1), (1, 1)),   # TinierHAR's temporal depthwise (C = 4, 8)
        (1, 32, 9, 8, 1, 5, 1, (1, 1), (1, 1)),
        (2, 10, 6, 3, 1, 3, 3, (1, 1), (1, 1)),   # C not dividing 8, 3x3, two batches
        (1, 1, 40, 12, 1, 1, 5, (1, 1), (1, 1)),  # along W: border pixels
        (1, 9, 7, 64, 1, 2, 3, (2, 1), (2, 1)),   # widest C on the path, stride and dilation in y
        (1, 4, 3, 1, 1, 3, 3, (1, 1), (1, 1)),    # one channel, interior shorter than a vector
        (1, 6, 20, 5, 1, 1, 4, (1, 1), (1, 1)),   # even filter
        (1, 8, 8, 65, 1, 3, 3, (1, 1), (1, 1)),   # C > 64: portable
        (1, 8, 8, 4, 2, 3, 3, (1, 1), (1, 1)),    # channel multiplier 2: portable
        (1, 8, 16, 8, 1, 1, 3, (1, 2), (1, 1)),   # stride_w 2: portable
        (1, 20, 4, 2, 1, 17, 1, (1, 1), (1, 1)),  # 17 taps: portable
    ]
    for n, h, w, c, mult_ch, kh, kw, stride, dil in shapes:
        for variant in range(2):
            pad_h = int(rng.integers(0, kh)) if kh > 1 else 0
            pad_w = int(rng.integers(0, kw)) if kw > 1 else 0
            extra_h, extra_w = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
            h_out = (h + pad_h + extra_h - dil[0] * (kh - 1) - 1) // stride[0] + 1
            w_out = (w + pad_w + extra_w - dil[1] * (kw - 1) - 1) // stride[1] + 1
            if h_out < 1 or w_out < 1:
                continue
            c_out = c * mult_ch
            x = _int8(rng, (n, h, w, c))
            wt = _int8(rng, (1, kh, kw, c_out))
            bias = None if variant else rng.integers(-(1 << 12), 1 << 12, size=c_out).astype(np.int32)
            mult, shift = _quant(rng, c_out, kh * kw)
            kw_args = dict(input_offset=[128, int(rng.integers(-127, 129))][variant],
                           output_offset=int(rng.integers(-128, 128)), stride=stride, padding=(pad_h, pad_w),
                           dilation=dil, activation=[(-128, 127), (-20, 127)][variant], output_shape=(h_out, w_out))
            args = (x, wt, bias, mult, shift)
            cases.append(("depthwise_conv_s8", args, kw_args))
            cases.append(("depthwise_conv_wrapper_s8", args, kw_args))
            if mult_ch == 1 and dil == (1, 1):
                cases.append(("depthwise_conv_s8_opt", args, kw_args))
                if (kh, kw) == (3, 3) and max(pad_h, pad_w, extra_h, extra_w) <= 1:
                    cases.append(("depthwise_conv_3x3_s8", args, kw_args))
    return cases


def fc_cases() -> list[tuple[str, tuple, dict]]:
    rng = np.random.default_rng(7)
    cases = []
    for batches, k, c_out in [(1, 8, 3), (1, 15, 6), (3, 16, 4), (5, 17, 9), (2, 31, 13), (1, 72, 16),
                              (32, 32, 1), (4, 48, 6), (1, 4096, 6), (2, 7, 5), (3, 3, 8), (1, 1, 4)]:
        x = _int8(rng, (batches, k))
        wt = _int8(rng, (c_out, k))
        bias = rng.integers(-(1 << 12), 1 << 12, size=c_out).astype(np.int32)
        for filter_offset in (0, int(rng.integers(-127, 129))):
            mult, shift = _quant(rng, c_out, k)
            common = dict(input_offset=int(rng.integers(-127, 129)), filter_offset=filter_offset,
                          output_offset=int(rng.integers(-128, 128)), activation=(-128, 127))
            cases.append(("fully_connected_per_channel_s8", (x, wt, bias, mult, shift), common))
            cases.append(("fully_connected_s8", (x, wt, bias, int(mult[0]), int(shift[0])),
                          dict(common, activation=(-90, 100))))
    return cases


def lstm_cases() -> list[tuple[str, tuple, dict]]:
    """The LSTM's gate matmuls: sizes around the 4-row blocks, the 16/8-value steps and the 64-row chunks."""
    rng = np.random.default_rng(5)
    cases = []
    # (B, T, I, H)
    for b, t, i, h in [(1, 16, 16, 24), (2, 9, 3, 5), (1, 6, 33, 70), (3, 4, 8, 1), (1, 5, 1, 17), (1, 3, 40, 64)]:
        x = _int8(rng, (b, t, i))
        w_in, w_h = _int8(rng, (4, h, i)), _int8(rng, (4, h, h))
        eb_in = rng.integers(-(1 << 14), 1 << 14, size=(4, h)).astype(np.int32)
        eb_h = rng.integers(-(1 << 14), 1 << 14, size=(4, h)).astype(np.int32)
        m_in = rng.integers(1 << 30, (1 << 31) - 1, size=4, dtype=np.int64).astype(np.int32)
        m_h = rng.integers(1 << 30, (1 << 31) - 1, size=4, dtype=np.int64).astype(np.int32)
        # gate pre-activations of a few thousand in Q3.12 (not saturated: the activations see real values)
        s_in = np.array([int(np.round(np.log2(4000 / (5500 * np.sqrt(i))))) for _ in range(4)], np.int32)
        s_h = np.array([int(np.round(np.log2(4000 / (5500 * np.sqrt(h))))) for _ in range(4)], np.int32)
        kw = dict(input_offset=int(rng.integers(-127, 129)), output_offset=int(rng.integers(-128, 128)),
                  forget_to_cell=(int(rng.integers(1 << 30, 1 << 31)), -15),
                  input_to_cell=(int(rng.integers(1 << 30, 1 << 31)), -16),
                  output_quant=(int(rng.integers(1 << 30, 1 << 31)), -23), cell_scale_power=-11,
                  cell_clip=int(rng.integers(0, 2)) * 20000, time_major=bool(b == 2))
        if b == 2:
            x = x.transpose(1, 0, 2).copy()
        cases.append(("lstm_unidirectional_s8", (x, w_in, w_h, eb_in, eb_h, m_in, s_in, m_h, s_h), kw))
    return cases


def add_pool_cases() -> list[tuple[str, tuple, dict]]:
    """Elementwise add (8-value vectors and their tail) and max pooling (the flat (K, 1) path and fallbacks)."""
    rng = np.random.default_rng(3)
    cases = []
    for shape in [(1,), (7,), (8,), (9,), (3, 11), (1, 64, 9, 8), (2, 33, 5)]:
        for variant in range(3):
            left = [20, 20, 0][variant]
            mult = rng.integers(1 << 30, (1 << 31) - 1, size=3, dtype=np.int64)
            kw = dict(input_1_offset=[128, -127, int(rng.integers(-127, 129))][variant], input_1_mult=int(mult[0]),
                      input_1_shift=[-1, 0, 1][variant], input_2_offset=int(rng.integers(-127, 129)),
                      input_2_mult=int(mult[1]), input_2_shift=int(rng.integers(-3, 1)), left_shift=left,
                      out_offset=int(rng.integers(-128, 128)), out_mult=int(mult[2]),
                      out_shift=[-20, -21, -2][variant], activation=[(-128, 127), (-128, 60), (-100, 90)][variant])
            cases.append(("elementwise_add_s8", (_int8(rng, shape), _int8(rng, shape)), kw))
    # (N, H, W, C), filter, stride, padding
    for shape, f, st, pad in [((1, 128, 9, 8), (2, 1), (2, 1), (0, 0)), ((2, 33, 3, 5), (3, 1), (1, 1), (1, 0)),
                              ((1, 64, 1, 16), (2, 1), (2, 1), (0, 0)), ((1, 9, 7, 3), (4, 1), (3, 1), (2, 0)),
                              ((1, 10, 10, 4), (2, 2), (2, 2), (0, 0)), ((1, 8, 6, 4), (2, 1), (1, 1), (0, 0))]:
        h_out = (shape[1] + 2 * pad[0] - f[0]) // st[0] + 1
        w_out = (shape[2] + 2 * pad[1] - f[1]) // st[1] + 1
        for act in [(-128, 127), (-20, 100)]:
            cases.append(("max_pool_s8", (_int8(rng, shape),),
                          dict(filter_shape=f, stride=st, padding=pad, activation=act, output_shape=(h_out, w_out))))
    return cases


def all_cases() -> list[tuple[str, tuple, dict]]:
    return conv_cases() + dw_cases() + fc_cases() + lstm_cases() + add_pool_cases()


def run_all() -> list[np.ndarray]:
    return [np.asarray(getattr(K, name)(*args, **kw)) for name, args, kw in all_cases()]


def test_host_paths_match_portable_kernels(tmp_path):
    fast = run_all()
    out = tmp_path / "portable.npz"
    env = dict(os.environ, HARCORE_PORTABLE_KERNELS="1")
    subprocess.run([sys.executable, __file__, str(out)], env=env, check=True, timeout=300)
    portable = np.load(out)
    names = [name for name, _, _ in all_cases()]
    assert len(portable.files) == len(fast) == len(names)
    varied = big = 0
    for i, (name, y) in enumerate(zip(names, fast)):
        ref = portable[f"case{i}"]
        assert y.shape == ref.shape and y.dtype == ref.dtype == np.int8, f"case {i} ({name})"
        differ = int(np.count_nonzero(y != ref))
        assert differ == 0, f"case {i} ({name}): {differ} of {y.size} values differ from the portable kernel"
        big += y.size >= 64
        varied += y.size >= 64 and len(np.unique(y)) > 16
    # the requantization keeps most outputs off the clamp: the comparison sees real values
    assert varied >= 0.8 * big


def test_scratch_check_precedes_host_path():
    """The generic kernel still demands its scratch buffer (the cost model's figure) with the host path on."""
    rng = np.random.default_rng(0)
    x, w = _int8(rng, (1, 1, 16, 16)), _int8(rng, (8, 1, 3, 16))
    m, s = _quant(rng, 8, 48)
    with pytest.raises(ValueError, match="ARG_ERROR"):
        K.convolve_s8(x, w, None, m, s, input_offset=0, output_offset=0, buffer_size=0)


if __name__ == "__main__":
    np.savez(sys.argv[1], **{f"case{i}": y for i, y in enumerate(run_all())})
