"""`tinyfake models`: every architecture with params, MACs and board fit."""
from __future__ import annotations

import argparse

HELP = "list the model architectures with params, MACs and whether they fit each board"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=64, help="input size in pixels (default 64)")
    p.add_argument("--board", action="append", metavar="NAME",
                   help="only this board (repeatable; default: every board in boards/)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def activation_bytes(model, size: int) -> int:
    """int8 arena estimate: the largest input + output pair of any layer."""
    import torch

    peak = [size * size * 3]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and inputs and isinstance(inputs[0], torch.Tensor):
            peak[0] = max(peak[0], inputs[0][0].numel() + output[0].numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return peak[0]


def rows(size: int, boards: list) -> list[dict]:
    from tinyfake.models import MODELS, build_model, count_macs_params
    from tinyfake.models.binary import BinaryNet, weight_bytes

    out = []
    for arch in MODELS:
        model = build_model(arch, size)
        macs, params = count_macs_params(model, (3, size, size))
        wb = weight_bytes(model)
        flash = wb["binary"] if isinstance(model, BinaryNet) else wb["int8"]
        arena = activation_bytes(model, size)
        fits = {}
        for b in boards:
            rom = b.regions[b.profile.rodata].size  # the weights are .rodata
            ram = max((b.regions[r].size for r in b.profile.arena), default=0)
            fits[b.name] = flash <= rom and arena <= ram
        out.append(dict(arch=arch, params=params, macs=macs, weight_bytes=flash,
                        arena_bytes=arena, fits=fits))
    return out


def run(args) -> int:
    from tinyfake.errors import UserError
    from tinyfake.firmware.boards import list_boards, load_board
    from tinyfake.models import MIN_INPUT_SIZE

    if args.size < MIN_INPUT_SIZE:
        raise UserError(f"--size {args.size} is too small; use >= {MIN_INPUT_SIZE}")
    boards = [load_board(n) for n in (args.board or list_boards())]
    table = rows(args.size, boards)
    if args.json:
        import json

        print(json.dumps({"size": args.size, "models": table}, indent=1))
        return 0
    names = [b.name for b in boards]
    head = f"{'arch':14s} {'params':>9s} {'MACs':>11s} {'weights B':>10s} {'arena~ B':>9s}  " \
           + "  ".join(names)
    print(f"models at {args.size}x{args.size} (weights: int8, binary nets bit-packed; "
          "arena: largest layer input+output, int8)")
    print(head)
    for r in table:
        fit = "  ".join(f"{'fits' if r['fits'][n] else 'NO':{len(n)}s}" for n in names)
        print(f"{r['arch']:14s} {r['params']:9d} {r['macs']:11d} {r['weight_bytes']:10d} "
              f"{r['arena_bytes']:9d}  {fit}")
    return 0
