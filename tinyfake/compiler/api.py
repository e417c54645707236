"""compile_model(): the Python entry point of the compiler."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tinyfake.compiler.codegen import write_sources
from tinyfake.compiler.graph import lower
from tinyfake.compiler.planner import plan_memory
from tinyfake.compiler.reader import read_tflite
from tinyfake.errors import UserError


@dataclass
class OpInfo:
    index: int
    name: str          # TFLite operator name
    kernel: str        # runtime call, or why it needs none
    macs: int
    output_shape: tuple[int, ...] = ()
    weight_bytes: int = 0              # its constants in flash (weights, biases, requantisation, tables)
    output_buffer: str = "arena"       # arena, the caller's input / output, or none (fused away)
    arena_slice: tuple[int, int] | None = None  # (offset, bytes) of its output in the arena


@dataclass
class CompiledModel:
    name: str
    hash: str                          # first 16 hex of sha256(.tflite)
    out_dir: Path
    arena_bytes: int                   # static arena (input/output are the caller's)
    weight_bytes: int                  # const arrays in flash: weights, biases, multipliers, tables
    macs: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    ops: list[OpInfo] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)   # runtime .c files (repo-relative)
    plan_strategy: str = ""

    @property
    def input_bytes(self) -> int:
        n = 1
        for d in self.input_shape:
            n *= d
        return n

    @property
    def output_bytes(self) -> int:
        n = 1
        for d in self.output_shape:
            n *= d
        return n


def compile_model(tflite_path: str | Path, out_dir: str | Path, name: str | None = None,
                  arena_budget: int | None = None, flash_budget: int | None = None,
                  inplace: bool = True, op_markers: bool = False,
                  binary_kernels: bool = True, optimize: str = "speed") -> CompiledModel:
    """Compile an int8 .tflite to out_dir/{model.c, model.h, sources.txt}.

    binary_kernels: run sign -> +-1 CONV_2D pairs (binary networks' int8
    form) as bit-packed XNOR-popcount kernels (False: as int8 convs).
    optimize: "speed" (default) or "size": int8 weights only, no doubled
    int16 layouts (less flash, more instructions; bit-exact either way)."""
    model = read_tflite(tflite_path)
    lowered = lower(model, binary_kernels, optimize)
    plan = plan_memory(model, lowered, inplace=inplace)
    macs = sum(s.macs for s in lowered.steps)
    weight_bytes = lowered.const_bytes
    if arena_budget is not None and plan.arena_bytes > arena_budget:
        raise UserError(f"the model needs a {plan.arena_bytes}-byte arena, {plan.arena_bytes - arena_budget} "
                        f"bytes over the arena budget of {arena_budget}; use a smaller model or input size")
    if flash_budget is not None and weight_bytes > flash_budget:
        raise UserError(f"the model's weights take {weight_bytes} bytes of flash, {weight_bytes - flash_budget} "
                        f"bytes over the flash budget of {flash_budget}; use a smaller model")
    name = name or Path(tflite_path).stem
    out_dir = Path(out_dir)
    sources = write_sources(model, lowered, plan, out_dir, name, plan.arena_bytes, weight_bytes, macs,
                            op_markers=op_markers)
    tin, tout = model.tensor(model.inputs[0]), model.tensor(model.outputs[0])
    by_op = {s.op.index: s for s in lowered.steps}
    ops = []
    for op in model.operators:
        s = by_op.get(op.index)
        kernel = s.call.split("(")[0].strip("{ ").split()[-1] if s else lowered.folded[op.index]
        out = op.outputs[0]
        while out not in plan.tensor_buffer and out in lowered.aliases:  # a folded op's output
            out = lowered.aliases[out]
        buf = plan.tensor_buffer.get(out)
        ops.append(OpInfo(op.index, op.opcode, kernel, s.macs if s else 0,
                          tuple(model.tensor(op.outputs[0]).shape),
                          sum(c.nbytes for c in s.consts) if s else 0,
                          buf.kind if buf else "none",
                          (buf.offset, buf.size) if buf and buf.kind == "arena" else None))
    return CompiledModel(name, model.sha256[:16], out_dir, plan.arena_bytes, weight_bytes, macs,
                         tin.shape, tout.shape, tin.quant.s, tin.quant.zp, tout.quant.s,
                         tout.quant.zp, ops, sources, plan.strategy)


LOWERING_OPTIONS = ("binary_kernels", "optimize")  # the compile options that choose kernels


def layers(tflite_path: str | Path, **options) -> list[OpInfo]:
    """Every operator of a .tflite as the compiler lowers it (kernel, output
    shape, MACs, weight bytes, arena slice), in call order: what the reports'
    per-layer tables show. Compiles into a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tinyfake-layers-") as tmp:
        return compile_model(tflite_path, Path(tmp) / "gen", **options).ops


def run_layers(run) -> list[OpInfo]:
    """layers() of a run's model, lowered with the options its gen/ was compiled with."""
    made = run.manifest.get("compile")
    options = {k: v for k, v in (made.options if made else {}).items() if k in LOWERING_OPTIONS}
    return layers(run.tflite, **options)


def _compile_options(run, options: dict) -> dict:
    # the budgets only check the result; everything else shapes gen/
    return {"name": run.root.resolve().name,
            **{k: v for k, v in options.items() if k not in ("arena_budget", "flash_budget")}}


def why_compile_stale(run, **options) -> str | None:
    """None when run/gen was compiled, with these options, from the run's .tflite as it is now."""
    return run.manifest.why_stale("compile", {"model_int8.tflite": run.tflite}, _compile_options(run, options))


def compile_run(run, **options) -> CompiledModel:
    """run/model_int8.tflite -> run/gen/ (compile_model's options), recorded in
    the run's manifest (tinyfake.provenance)."""
    with run.lock():
        run.require_current_export()
        run.manifest.forget("compile")
        cm = compile_model(run.tflite, run.gen, name=run.root.resolve().name, **options)
        run.manifest.record("compile", {"model_int8.tflite": run.tflite}, _compile_options(run, options),
                            sorted(p for p in run.gen.iterdir() if p.is_file()))
    return cm
