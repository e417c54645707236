"""`tinyfake train`: train a face classifier into runs/<name>/."""
from __future__ import annotations

import argparse
from pathlib import Path

from tinyfake.models import MODELS
from tinyfake.runs import RUNS_ROOT, RunDir
from tinyfake.train.supervised import TRAIN_DEFAULTS, make_config, train

HELP = "train a real-vs-fake face classifier (writes runs/<name>/model.pt, metrics.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TRAIN_DEFAULTS
    p.add_argument("--data", default=None, metavar="PATH",
                   help="folder with real/ and fake/, or an .npz (default: the embedded demo set)")
    p.add_argument("--size", type=int, default=64, help="model input size in pixels (default 64)")
    p.add_argument("--detect-faces", action="store_true",
                   help="detect and crop the largest face in each image (OpenCV)")
    p.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images instead of failing")
    p.add_argument("--arch", default="phinet", choices=sorted(MODELS), help="model (default phinet)")
    m = MODELS["phinet"][1]
    p.add_argument("--alpha", type=float, default=m["alpha"], help="PhiNet width multiplier")
    p.add_argument("--beta", type=float, default=m["beta"], help="PhiNet shape factor")
    p.add_argument("--t-zero", type=float, default=m["t_zero"], help="PhiNet base expansion")
    p.add_argument("--num-layers", type=int, default=m["num_layers"], help="PhiNet blocks")
    p.add_argument("--no-squeeze-excite", action="store_true", help="PhiNet without squeeze-excite")
    p.add_argument("--no-hard-swish", action="store_true", help="PhiNet with ReLU6 instead of hard-swish")
    p.add_argument("--epochs", type=int, default=d["epochs"], help=f"at most this many (default {d['epochs']})")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"], help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    p.add_argument("--patience", type=int, default=d["patience"],
                   help="stop after this many epochs without a better validation AUC")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and batch order")
    p.add_argument("--name", help="run name (default <arch><size>_<data name>)")
    p.add_argument("--runs-dir", default=str(RUNS_ROOT), help="where runs live (default runs/)")


def config_from_args(args) -> dict:
    model_kwargs = {}
    if args.arch == "phinet":
        model_kwargs = dict(alpha=args.alpha, beta=args.beta, t_zero=args.t_zero,
                            num_layers=args.num_layers, squeeze_excite=not args.no_squeeze_excite,
                            h_swish=not args.no_hard_swish)
    return make_config(args.data, args.size, args.arch, seed=args.seed,
                       skip_corrupt=args.skip_corrupt, detect_faces=args.detect_faces,
                       model_kwargs=model_kwargs, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
                       augment=not args.no_augment)


def run(args) -> int:
    config = config_from_args(args)
    data_name = "default" if config["data"]["source"] == "default" else Path(config["data"]["source"]).stem
    name = args.name or f"{args.arch}{args.size}_{data_name}"
    run_dir = RunDir(Path(args.runs_dir) / name)
    m = train(config, run_dir)
    val, test = m["val"], m["test"]
    print(f"trained {run_dir.root}: best epoch {m['best_epoch']}/{m['epochs_run']}, "
          f"{m['params']} params, {m['macs']} MACs, {m['seconds']:.0f} s")
    for split, r in (("val", val), ("test", test)):
        if r:
            print(f"  {split:4s} n={r['n']:4d}  accuracy {r['accuracy']:.3f}  auc {r['auc']:.3f}  "
                  f"f1 {r['f1']:.3f}  eer {r['eer']:.3f}")
    return 0
