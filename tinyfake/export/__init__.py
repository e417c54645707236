"""PyTorch -> ONNX -> int8 TFLite (onnx2tf) -> TFLite Micro C array (binary
networks: their int8 TFLite form written directly, binary_tflite), and the
three-way evaluation (float, TFLite reference kernels, TFLite Micro).

Later stages reuse the readers and oracles here: `io_quant`, `op_names`,
`tflite_int8_outputs`, `tflm_outputs`, `tflm_arena_usage`.
"""
from tinyfake.export.c_array import c_array_source, parse_c_array, write_c_array
from tinyfake.export.tflite_int8 import (TFLM_OPS, TensorQuant, check_int8_tflm, dequantize,
                                         io_quant, op_names, quantized_inputs, read_model,
                                         reference_interpreter, tflite_int8_outputs)
from tinyfake.export.tflm import (ArenaUsage, first_divergent_op, tflm_arena_bytes,
                                  tflm_arena_usage, tflm_outputs)

__all__ = ["ArenaUsage", "TFLM_OPS", "TensorQuant", "c_array_source", "check_int8_tflm",
           "dequantize", "first_divergent_op", "io_quant", "op_names", "parse_c_array",
           "quantized_inputs", "read_model", "reference_interpreter", "tflite_int8_outputs", "tflm_arena_bytes", "tflm_arena_usage",
           "tflm_outputs", "write_c_array"]
