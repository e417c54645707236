"""tinyfake.compiler: int8 .tflite -> plain C calling firmware/runtime kernels.

    compile_model(tflite_path, out_dir, name=None, arena_budget=None,
                  flash_budget=None) -> CompiledModel
"""
from tinyfake.compiler.api import CompiledModel, OpInfo, compile_model

__all__ = ["CompiledModel", "OpInfo", "compile_model"]
