"""`tinyfake` command line: one sub-command per stage.

Each command lives in its stage's package as a module exposing
`HELP`, `add_arguments(parser)` and `run(args) -> int`; the module imports
only light things at the top (torch and friends inside `run`), so that
`tinyfake --help` takes well under a second.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from tinyfake.errors import UserError

# command name -> module implementing it
COMMANDS = {
    "prepare": "tinyfake.data.prepare",
    "train": "tinyfake.train.command",
    "models": "tinyfake.models.command",
    "export": "tinyfake.export.command",
    "eval": "tinyfake.export.eval_command",
    "compile": "tinyfake.compiler.command",
    "boards": "tinyfake.firmware.boards_command",
    "firmware": "tinyfake.firmware.command",
    "simulate": "tinyfake.harness.simulate_command",
    "flash": "tinyfake.harness.flash_command",
    "verify": "tinyfake.harness.verify_command",
    "monitor": "tinyfake.harness.monitor_command",
    "build": "tinyfake.build",
    "detect": "tinyfake.detect.command",
    "runs": "tinyfake.runs_command",
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyfake",
        description="Deepfake detectors on microcontrollers: train, quantize, "
        "compile to C, build firmware, verify on a board or in simulation.",
    )
    from tinyfake import __version__
    parser.add_argument("--version", action="version", version=f"tinyfake {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)  # light: heavy imports wait for run()
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    if hasattr(sys.stdout, "reconfigure"):  # progress lines reach a CI log or a pipe as they happen
        sys.stdout.reconfigure(line_buffering=True)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"tinyfake: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyfake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinyfake boards | head`: the reader left, which is no error
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
