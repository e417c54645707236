"""The engine benchmark (scripts/bench_engine.py) as a CI regression check on
instruction counts, not wall time: every reference model compiled, built
for the simulator and run in QEMU with the instruction-count plugin.
Outputs must equal the tflite-micro wheel's, counts must repeat exactly,
must not exceed the committed bench/results/engine.json, and must meet the
issue 7 ratios to TFLite Micro + CMSIS-NN."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_engine", REPO / "scripts" / "bench_engine.py")
bench_engine = importlib.util.module_from_spec(spec)
sys.modules["bench_engine"] = bench_engine
spec.loader.exec_module(bench_engine)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and arm-none-eabi-gcc"),
    pytest.mark.skipif(not bench_engine.MODELS_DIR.is_dir(), reason="../shared/bench/models not present"),
]

MODELS = ["phinet96", "phinet64", "phinet96compat", "xinet96"]
# Targets not reached yet (issue 7 stays open for these): (model, metric)
NOT_YET: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    models = [(n, p) for n, p in bench_engine.find_models() if n in MODELS]
    if not models:
        pytest.skip("no reference models")
    doc = bench_engine.run_bench(models, out=None, work=tmp_path_factory.mktemp("bench"), log=lambda m: None)
    return doc["models"]


@pytest.mark.parametrize("name", MODELS)
def test_bit_exact_and_deterministic(results, name):
    if name not in results:
        pytest.skip(f"{name} not present")
    r = results[name]
    assert r["bit_exact"], (r["output_device"], r["output_tflite_micro"])
    assert r["deterministic"] and r["warmup_instructions"] == r["instructions"]
    assert abs(r["instructions_other"]) < 0.01 * r["instructions"]   # per-op counts add up
    assert r["flash_bytes"] > r["weight_bytes"] and r["static_ram_bytes"] >= r["arena_bytes"]


def test_same_counts_in_a_second_run(results, tmp_path):
    """A fresh compile, build and simulator gives identical counts."""
    name = "phinet64" if "phinet64" in results else next(iter(results))
    again = bench_engine.run_bench([(n, p) for n, p in bench_engine.find_models() if n == name],
                                   out=None, work=tmp_path, log=lambda m: None)["models"][name]
    assert again["instructions"] == results[name]["instructions"]
    assert [o["instructions"] for o in again["per_op"]] == [o["instructions"] for o in results[name]["per_op"]]


@pytest.mark.parametrize("name", MODELS)
def test_no_regression_against_committed_results(results, name):
    committed = REPO / "bench" / "results" / "engine.json"
    if name not in results or not committed.exists():
        pytest.skip("nothing to compare with")
    old = json.loads(committed.read_text())["models"].get(name)
    if old is None:
        pytest.skip(f"{name} not in {committed}")
    r = results[name]
    assert r["instructions"] <= old["instructions"] * 1.005, (r["instructions"], old["instructions"])
    assert r["arena_bytes"] <= old["arena_bytes"]


@pytest.mark.parametrize("metric", ["instructions", "arena_bytes", "flash_bytes"])
@pytest.mark.parametrize("name", MODELS)
def test_issue7_targets(results, name, metric):
    if name not in results:
        pytest.skip(f"{name} not present")
    ratio = results[name]["ratio"][metric]
    target = bench_engine.TARGETS[metric]
    if (name, metric) in NOT_YET and ratio > target:
        pytest.xfail(f"{name} {metric}: {ratio:.3f}x of TFLite Micro + CMSIS-NN, target {target}x (open)")
    assert ratio <= target, f"{name} {metric}: {ratio:.3f}x of TFLite Micro + CMSIS-NN, target {target}x"


def test_table_is_generated_from_the_json(results):
    md = bench_engine.table_markdown({"models": results})
    for name in results:
        assert f"| {name} | {results[name]['instructions']:,} |" in md
