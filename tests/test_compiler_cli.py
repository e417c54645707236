"""The `tinyfake compile` command, the generated-C contract, errors, and the
Cortex-M7 build of generated code."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyfake.cli import main
from tinyfake.compiler import compile_model
from tinyfake.paths import SOURCE_ROOT
from tinyfake.compiler.graph import lower
from tinyfake.compiler.modelbuilder import T, build
from tinyfake.compiler.planner import plan_memory
from tinyfake.compiler.reader import read_tflite
from tinyfake.errors import UserError

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "models"
PHINET = BENCH / "phinet96.tflite"
needs_bench = pytest.mark.skipif(not PHINET.exists(), reason="bench models not present")


def _small_model(tmp_path: Path, opname: str = "HARD_SWISH", in_dtype: str = "int8") -> Path:
    shape = (1, 4, 4, 3)
    data = build([(opname, [0], [1], {})],
                 [T(shape, in_dtype, scale=0.05, zp=3), T(shape, scale=0.03, zp=-20)], [0], [1])
    p = tmp_path / f"{opname.lower()}.tflite"
    p.write_bytes(data)
    return p


@needs_bench
def test_cli_writes_interface_files(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["compile", str(PHINET), "-o", str(out), "--name", "phinet"]) == 0
    assert "arena" in capsys.readouterr().out
    h = (out / "model.h").read_text()
    for macro in ["MODEL_NAME", "MODEL_HASH", "MODEL_INPUT_H", "MODEL_INPUT_W", "MODEL_INPUT_C",
                  "MODEL_INPUT_BYTES", "MODEL_OUTPUT_BYTES", "MODEL_INPUT_SCALE",
                  "MODEL_INPUT_ZERO_POINT", "MODEL_OUTPUT_SCALE", "MODEL_OUTPUT_ZERO_POINT",
                  "MODEL_ARENA_BYTES", "MODEL_WEIGHT_BYTES", "MODEL_MACS", "MODEL_NUM_OPS"]:
        assert re.search(rf"#define {macro} ", h), macro
    assert '#define MODEL_NAME "phinet"' in h
    assert re.search(r'#define MODEL_HASH "[0-9a-f]{16}"', h)
    assert "#define MODEL_INPUT_BYTES 27648" in h and "#define MODEL_OUTPUT_BYTES 2" in h
    assert "int model_invoke(const int8_t *input, int8_t *output);" in h
    c = (out / "model.c").read_text()
    n_ops = int(re.search(r"#define MODEL_NUM_OPS (\d+)", h).group(1))
    assert [int(i) for i in re.findall(r"MODEL_OP_BEGIN\((\d+),", c)] == list(range(n_ops))
    assert [int(i) for i in re.findall(r"MODEL_OP_END\((\d+)\)", c)] == list(range(n_ops))
    assert "malloc" not in c and "float" not in c.split("int model_invoke")[1]
    srcs = (out / "sources.txt").read_text().split()
    assert srcs and all((SOURCE_ROOT / s).is_file() for s in srcs)


@needs_bench
def test_cli_json_is_the_whole_output(tmp_path, capsys):
    import json
    out = tmp_path / "gen"
    assert main(["compile", str(PHINET), "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    h = (out / "model.h").read_text()
    assert len(doc["ops"]) == int(re.search(r"#define MODEL_NUM_OPS (\d+)", h).group(1))
    assert doc["macs"] == sum(o["macs"] for o in doc["ops"]) > 0
    assert f'#define MODEL_ARENA_BYTES {doc["arena_bytes"]}' in h
    assert doc["kernel_calls"] == sum(o["kernel"].startswith("tfk") for o in doc["ops"]) > 0


@needs_bench
def test_op_hooks_bracket_every_operator(tmp_path):
    """An includer's MODEL_OP_BEGIN/END see every operator once, in order."""
    cm = compile_model(PHINET, tmp_path / "gen")
    main_c = tmp_path / "main.c"
    main_c.write_text(r"""
#include <stdio.h>
#include <stdint.h>
static int depth = 0;
static void begin(int i, const char *n) { printf("B %d %s\n", i, n); depth++; }
static void end(int i) { printf("E %d\n", i); depth--; }
#define MODEL_OP_BEGIN(i, n) begin(i, n)
#define MODEL_OP_END(i) end(i)
#include "model.c"
int main(void) {
  static int8_t in[MODEL_INPUT_BYTES], out[MODEL_OUTPUT_BYTES];
  int rc = model_invoke(in, out);
  return rc != 0 || depth != 0;
}
""")
    runtime = [str(SOURCE_ROOT / s) for s in cm.sources]
    exe = tmp_path / "run"
    subprocess.run(["gcc", "-std=c99", "-O1", f"-I{SOURCE_ROOT / 'firmware/runtime'}", f"-I{tmp_path / 'gen'}",
                    "-o", str(exe), str(main_c), *runtime], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    begins = [ln.split() for ln in lines if ln.startswith("B ")]
    assert [int(b[1]) for b in begins] == list(range(len(cm.ops)))
    assert [b[2] for b in begins] == [o.name for o in cm.ops]


@needs_bench
@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="no ARM toolchain")
def test_generated_code_builds_for_cortex_m7(tmp_path):
    """-mcpu=cortex-m7 ... -Wall -Wextra -Werror, DSP kernels selected by __ARM_FEATURE_DSP."""
    from tinyfake.compiler.hostbuild import arm_object_sizes
    cm = compile_model(PHINET, tmp_path / "gen")
    sizes = arm_object_sizes(tmp_path / "gen")
    assert 0 < sizes["text"] < 32 * 1024
    assert sizes["rodata"] >= cm.weight_bytes
    assert sizes["bss"] == cm.arena_bytes
    # the DSP kernels are what got compiled: their object has the dual-MAC instruction
    gcc = shutil.which("arm-none-eabi-gcc")
    asm = subprocess.run([gcc, "-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-O2",
                          f"-I{SOURCE_ROOT / 'firmware/runtime'}", "-S", "-o", "-",
                          str(SOURCE_ROOT / "firmware/runtime/cortex_m/tfk_conv_dsp.c")],
                         check=True, capture_output=True, text=True).stdout
    assert "smlad" in asm and "sxtb16" in asm


@needs_bench
def test_inplace_and_alias_planning():
    m = read_tflite(PHINET)
    lowered = lower(m)
    plan = plan_memory(m, lowered)
    luts = [s for s in lowered.steps if s.op.opcode == "HARD_SWISH"]
    assert luts and all(plan.tensor_buffer[s.output] is plan.tensor_buffer[s.inputs[0]] for s in luts)
    no_inplace = plan_memory(m, lower(m), inplace=False)
    assert plan.arena_bytes < no_inplace.arena_bytes
    # PADs are folded into the depthwise convolutions that read them
    assert sum(1 for why in lowered.folded.values() if "fused" in why) == 4


def test_unsupported_op_names_op_and_alternatives(tmp_path):
    with pytest.raises(UserError) as e:
        compile_model(_small_model(tmp_path, "TANH"), tmp_path / "gen")
    msg = str(e.value)
    assert msg.startswith("op 0 (TANH): operator TANH is not supported; supported: ")
    assert "CONV_2D" in msg and "\n" not in msg


def test_float_model_is_rejected(tmp_path):
    with pytest.raises(UserError, match="float32.*int8"):
        compile_model(_small_model(tmp_path, "HARD_SWISH", in_dtype="float32"), tmp_path / "gen")


def test_budgets_say_by_how_much(tmp_path, capsys):
    p = _small_model(tmp_path)
    cm = compile_model(p, tmp_path / "gen")
    assert cm.arena_bytes == 0 and cm.weight_bytes == 256  # in/out are the caller's; one LUT
    with pytest.raises(UserError, match=r"256 bytes of flash, 56 bytes over the flash budget of 200"):
        compile_model(p, tmp_path / "gen", flash_budget=200)
    rc = main(["compile", str(p), "-o", str(tmp_path / "g2"), "--flash-budget", "100"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "156 bytes over" in err


@needs_bench
def test_arena_budget(tmp_path):
    with pytest.raises(UserError, match=r"needs a \d+-byte arena, \d+ bytes over the arena budget of 1024"):
        compile_model(PHINET, tmp_path / "gen", arena_budget=1024)


def test_not_a_tflite_file(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"hello world, not a model")
    assert main(["compile", str(bad), "-o", str(tmp_path / "g")]) == 2
    assert "not a TFLite flatbuffer" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "missing.tflite")]) == 2


def test_lut_tables_match_oracle_for_many_scales(tmp_path):
    """HARD_SWISH / LOGISTIC tables vs the wheel on every int8 input, 40 scale pairs."""
    pytest.importorskip("tflite_micro")
    from tinyfake.compiler import quant as Q
    from tinyfake.compiler.oracle import run_isolated
    rng = np.random.default_rng(3)
    x = np.arange(-128, 128, dtype=np.int16).astype(np.int8)
    jobs, want_tables = [], []
    for i in range(40):
        s_in, z_in = float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-128, 128))
        s_out, z_out = float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-128, 128))
        if i % 2:
            tensors = [T((256,), scale=s_in, zp=z_in), T((256,), scale=s_out, zp=z_out)]
            jobs.append((build([("HARD_SWISH", [0], [1], {})], tensors, [0], [1]), [x]))
            want_tables.append(Q.hard_swish_lut(s_in, z_in, s_out, z_out))
        else:
            tensors = [T((256,), scale=s_in, zp=z_in), T((256,), scale=1 / 256, zp=-128)]
            jobs.append((build([("LOGISTIC", [0], [1], {})], tensors, [0], [1]), [x]))
            want_tables.append(Q.logistic_lut(s_in, z_in))
    for (_, _), got, table in zip(jobs, run_isolated(jobs), want_tables):
        assert np.array_equal(got[0], table[x.view(np.uint8)])
