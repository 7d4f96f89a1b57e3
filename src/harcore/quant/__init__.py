"""harcore's int8 path: the int8 graph (``QGraph``), PTQ, lowering to the C++ runtime, and simulation.

    >>> from harcore import quant
    >>> g = quant.quantize(model, calibration_x)   # (N, C, T) float windows
    >>> g.save("model.hq8"); g = quant.load("model.hq8")
    >>> y = quant.simulate(g, x, dequantize=True)
    >>> m = quant.evaluate(g, test.x, test.y, num_classes=6)   # int8 accuracy / macro-F1 (harcore.train.Metrics)
    >>> m, why = quant.ptq_metrics(model, calibration_x, test.x, test.y, 6)   # PTQ + evaluate; why: int8 error
    >>> g = quant.qat(model, train_split, val_split, epochs=3)   # QAT fine-tuning -> QGraph

Specification: ``docs/int8.md``.
"""

from harcore.quant.lower import Program, lower
from harcore.quant.ptq import quantize
from harcore.quant.qat import QATModel, convert, prepare_qat, qat
from harcore.quant.qgraph import FORMAT, VERSION, QGraph, QOp, QParams, load
from harcore.quant.simulate import evaluate, ptq_metrics, simulate
from harcore.quant.tflite_export import to_tflite

__all__ = ["quantize", "evaluate", "ptq_metrics", "qat", "prepare_qat", "convert", "QATModel", "lower", "simulate", "to_tflite", "Program", "QGraph", "QOp", "QParams", "load", "FORMAT", "VERSION"]
