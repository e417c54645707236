"""`tinyfake verify`: check the firmware's outputs on a board or in simulation."""
from __future__ import annotations

from tinyfake.errors import UserError
from tinyfake.firmware.boards import DEFAULT_BOARD, load_board

HELP = ("stream the test split to a board (--port) or the simulator (--simulate), check every output "
        "against the host's int8 output, write report.json/report.md")


def add_arguments(p) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="board name (see `tinyfake boards`)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial port of the board, e.g. /dev/ttyACM0 (or a pyserial URL)")
    where.add_argument("--simulate", action="store_true", help="run the firmware in QEMU")
    p.add_argument("--renode", nargs="?", const="", metavar="PATH",
                   help="with --simulate: run the board ELF in Renode instead of QEMU's twin (launcher: "
                        "PATH, $RENODE, renode on PATH, or ../shared/renode)")
    p.add_argument("--run", help="run directory (default: the only run with compiled C)")
    p.add_argument("--data", help="dataset to verify on instead of the run's test split")
    p.add_argument("--limit", type=int, help="verify on a seeded sample of this many images")
    p.add_argument("--profile", action="store_true",
                   help="with --simulate: also count instructions per operator (report.md table, profile.png)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply before resending")


def run(args) -> int:
    from tinyfake.harness.verify import harness_run, verify_run

    if not args.port and not args.simulate:
        raise UserError("say where the firmware runs: --port /dev/ttyACM0 (a board) or --simulate")
    run_dir = harness_run(args.run)
    report = verify_run(run_dir, load_board(args.board), port=args.port, simulate=args.simulate,
                        data=args.data, limit=args.limit, renode=args.renode, profile=args.profile,
                        timeout=args.timeout)
    print(report["text"])
    print(f"wrote {' and '.join(report['written'])}")
    v = report["verification"]
    if v["identical"] != v["n"] or v["selftest"] != "ok":
        print(f"tinyfake: verification FAILED: {v['n'] - v['identical']} of {v['n']} device outputs "
              f"differ from the host's int8 outputs; self-test {v['selftest']}")
        return 1
    return 0
