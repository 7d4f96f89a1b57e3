#!/usr/bin/env python3
"""Print the 256-entry Q0.16 sigmoid table of src/cpp/kernels/arm_lstm_unidirectional_s8.cpp.

Entry i samples sigmoid at x = i / 24 and is lowered by half the linear-interpolation error at the
midpoint to the next sample, so that interpolating between entries errs equally at the samples and in
between: t[i] = round(S*s(x) - e/2), e = (S*s(x) + S*s(x + h))/2 - S*s(x + h/2), S = 65536, h = 1/24.
The last entry is pinned to 65535, the uint16 maximum: sigmoid's limit 1.0 is 65536 in Q0.16, and the
interpolation toward larger inputs saturates there. This is the table the TFLite/TFLM integer sigmoid/tanh
interpolate in, so the int8 LSTM needs it exactly; tests/test_kernels_lstm_oracle.py checks the source.
"""

import math


def sigmoid_table() -> list[int]:
    s = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    S, h = 65536.0, 1.0 / 24.0
    out = []
    for i in range(255):
        x = i * h
        err = (S * s(x) + S * s(x + h)) / 2 - S * s(x + h / 2)
        out.append(min(max(round(S * s(x) - err / 2), 0), 65535))
    out.append(65535)
    return out


if __name__ == "__main__":
    t = sigmoid_table()
    print(",\n".join("    " + ", ".join(str(v) for v in t[r:r + 16]) for r in range(0, 256, 16)))
