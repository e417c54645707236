"""The protocol fuzz target (scripts/fuzz_protocol.py) for a bounded time in
every `make test`: no crash, no sanitizer report, no broken oracle (reply
framing, the work cap). The execution count goes into the test summary."""
import pytest
from fixtures.device_parser import fuzz_protocol

pytestmark = pytest.mark.slow
SECONDS = 60

EXECUTIONS: dict[str, int] = {}  # reported by conftest.pytest_terminal_summary


def test_protocol_parser_survives_the_fuzzer(tmp_path):
    result = fuzz_protocol.run(fuzz_protocol.build(tmp_path), SECONDS, tmp_path)
    EXECUTIONS[result["target"]] = result["executions"]
    assert result["crashes"] == 0, "\n".join(result["log_tail"] + result["reproducers"])
    assert result["executions"] > 1000  # it ran, and not only the seed corpus
