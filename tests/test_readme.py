"""The README's numbers come from the committed benchmark results."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_engine_table_in_readme_is_generated_from_engine_json():
    spec = importlib.util.spec_from_file_location("bench_engine_for_readme", REPO / "scripts" / "bench_engine.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = json.loads((REPO / "bench" / "results" / "engine.json").read_text())
    readme = (REPO / "README.md").read_text()
    assert bench.readme_with_table(readme, bench.table_markdown(doc)) == readme, \
        "README's engine table is stale: run scripts/bench_engine.py --readme"


def test_zoo_table_in_readme_is_generated_from_zoo_json():
    spec = importlib.util.spec_from_file_location("bench_zoo_for_readme", REPO / "scripts" / "bench_zoo.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = json.loads((REPO / "bench" / "results" / "zoo.json").read_text())
    readme = (REPO / "README.md").read_text()
    table = bench.table_markdown(doc)
    assert bench.readme_with_table(readme, table, bench.TABLE_BEGIN, bench.TABLE_END) == readme, \
        "README's model-zoo table is stale: run scripts/bench_zoo.py --readme"


def test_dfdc_table_in_readme_is_generated_from_dfdc_json():
    spec = importlib.util.spec_from_file_location("bench_dfdc_for_readme", REPO / "scripts" / "bench_dfdc.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = json.loads((REPO / "bench" / "results" / "dfdc.json").read_text())
    readme = (REPO / "README.md").read_text()
    table = bench.table_markdown(doc)
    assert bench.readme_with_table(readme, table, bench.TABLE_BEGIN, bench.TABLE_END) == readme, \
        "README's DFDC table is stale: run scripts/bench_dfdc.py --readme"
