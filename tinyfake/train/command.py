"""`tinyfake train`: train a face classifier into runs/<name>/."""
from __future__ import annotations

import argparse
import os
from contextlib import nullcontext
from pathlib import Path

from tinyfake.data.augment import POLICIES
from tinyfake.models import CHANNELS, MODELS, check_channels
from tinyfake.runs import RUNS_ROOT, RunDir
from tinyfake.errors import UserError
from tinyfake.train.config import FRACTIONS, INIT_METHODS, METHODS, TRAIN_DEFAULTS, make_config

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
    p.add_argument("--channels", default="rgb", choices=CHANNELS,
                   help="model input: rgb (default), or rgb+fft+lbp: RGB plus the FFT log-magnitude "
                        "spectrum and LBP codes of the grey face through a learned 1x1 conv, any arch; "
                        "the firmware computes the two extra channels on the board (size: a power of two)")
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
    p.add_argument("--augment", choices=POLICIES, default=None,
                   help="training augmentation: none, mild (default: flip, shift, colour jitter), "
                        "jpeg (mild + JPEG re-encoding) or strong (jpeg + blur, cut-out)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation (= --augment none)")
    p.add_argument("--workers", type=int, default=d["workers"],
                   help=f"DataLoader processes that augment batches (0: in the training process; "
                        f"default {d['workers']}); the result does not depend on it")
    p.add_argument("--device", default=d["device"],
                   help="where to train: auto (default: CUDA when there is a GPU), cpu, cuda, cuda:N; "
                        "mixed precision on CUDA. Under torchrun each process takes the GPU of its "
                        "local rank, and --batch-size is per process")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run whose training stopped (killed, Ctrl-C) from its last "
                        "checkpoint, to the weights an uninterrupted run reaches; takes the run's "
                        "own options (only --device, --workers and --threads may change)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and batch order")
    p.add_argument("--name", help="run name (default <arch><size>_<data name>[_<method>])")
    p.add_argument("--config", metavar="CONFIG_TOML",
                   help="rerun a run: train exactly what its config.toml says (data, split, model, "
                        "every training option; refused when the data no longer hashes the same), into "
                        "--name (default <its run>_rerun); same weights on the same machine")
    p.add_argument("--force", action="store_true",
                   help="retrain a run that exists: its model and everything made from it "
                        "(export, compiled C, firmware, reports) are deleted first")
    g = p.add_argument_group("training method")
    g.add_argument("--method", default="supervised", choices=METHODS,
                   help="supervised (default); simclr: SimCLR pre-training then a linear probe on the "
                        "frozen backbone; simclr-finetune: then train the whole net; distill: from "
                        "--teacher; finetune: train the --init run on with a new schedule (--epochs, --lr, "
                        "--augment); prune: channel-prune the --init run; qat: quantization-aware "
                        "fine-tuning of the --init run (finetune/prune/qat take data and model from --init)")
    g.add_argument("--init", metavar="RUN_DIR", help="finetune/prune/qat: the trained run to start from")
    g.add_argument("--teacher", metavar="RUN_DIR",
                   help="distill (or prune): the trained teacher run, on the same data and seed")
    g.add_argument("--distill-alpha", type=float, metavar="A",
                   help="distill: weight of BCE(student, teacher prob) vs the label BCE (default 0.5)")
    g.add_argument("--temperature", type=float, help="simclr: NT-Xent temperature (default 0.07)")
    g.add_argument("--pretrain-epochs", type=int, help="simclr: pre-training epochs (default 20)")
    g.add_argument("--pretrain-batch-size", type=int, help="simclr: faces per batch, 2 views each (default 64)")
    g.add_argument("--probe-epochs", type=int, help="simclr: linear-probe epochs (default 20)")
    g.add_argument("--finetune-epochs", type=int,
                   help="simclr-finetune: full fine-tuning epochs (default 20); prune: after each step (default 5)")
    g.add_argument("--prune-ratio", type=float, metavar="R",
                   help="prune: fraction of MACs (or params) to remove (default 0.5)")
    g.add_argument("--prune-target", choices=("macs", "params"), help="prune: what the ratio counts (default macs)")
    g.add_argument("--prune-steps", type=int, help="prune: steps, fine-tuning after each (default 3)")
    g.add_argument("--qat-epochs", type=int, help="qat: fine-tuning epochs with fake-quant (default 5)")
    g.add_argument("--qat-lr", type=float, help="qat: learning rate (default 5e-4)")
    p.add_argument("--threads", type=int, default=None,
                   help="PyTorch CPU threads (default: all cores, at most 4)")
    p.add_argument("--recipe", metavar="NAME|FILE",
                   help=f"start from a recipe: a TOML file of these options, or a shipped one "
                        f"({', '.join(recipe_names())}); "
                        "options given on the command line win")
    p.add_argument("--runs-dir", default=str(RUNS_ROOT), help="where runs live (default runs/)")


RECIPES = Path(__file__).resolve().parent / "recipes"


def recipe_names() -> list[str]:
    return sorted(r.stem for r in RECIPES.glob("*.toml"))


def option_defaults() -> dict:
    """Every `tinyfake train` option at its default (an option there counts as not given)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args([]))


def apply_recipe(args) -> None:
    """Fill the options a recipe names, except those given on the command line
    (an option still at its default counts as not given)."""
    import tomllib

    path = RECIPES / f"{args.recipe}.toml" if "/" not in args.recipe and not args.recipe.endswith(".toml") \
        else Path(args.recipe)
    if not path.is_file():
        raise UserError(f"no recipe {args.recipe!r}: give a TOML file or one of {', '.join(recipe_names())}")
    try:
        recipe = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read recipe {path}: {exc}") from None
    defaults = option_defaults()
    unknown = sorted(set(recipe) - set(defaults) - {"recipe"})
    if unknown:
        raise UserError(f"recipe {path}: unknown option(s) {', '.join(unknown)}; "
                        "keys are `tinyfake train` options with - written as _")
    for key, value in recipe.items():
        if getattr(args, key) == defaults[key]:
            setattr(args, key, value)


_SIMCLR = {"simclr": "simclr", "simclr-finetune": "simclr"}
# CLI option -> (key in the option table, {method it applies to: option table})
METHOD_ARGS = {
    "init": ("init", {m: m for m in INIT_METHODS}),
    "teacher": ("teacher", {"distill": "distill", "prune": "distill"}),
    "distill_alpha": ("alpha", {"distill": "distill", "prune": "distill"}),
    "temperature": ("temperature", _SIMCLR),
    "pretrain_epochs": ("pretrain_epochs", _SIMCLR),
    "pretrain_batch_size": ("pretrain_batch_size", _SIMCLR),
    "probe_epochs": ("probe_epochs", _SIMCLR),
    "finetune_epochs": ("finetune_epochs", {"simclr-finetune": "simclr", "prune": "prune"}),
    "prune_ratio": ("ratio", {"prune": "prune"}),
    "prune_target": ("target", {"prune": "prune"}),
    "prune_steps": ("steps", {"prune": "prune"}),
    "qat_epochs": ("epochs", {"qat": "qat"}),
    "qat_lr": ("lr", {"qat": "qat"}),
}


def method_tables(args) -> dict:
    """The [train.<group>] options given on the command line for args.method."""
    if args.method in INIT_METHODS and not args.init:
        raise UserError(f"--method {args.method} needs --init RUN_DIR (the trained run to start from)")
    if args.method == "distill" and not args.teacher:
        raise UserError("--method distill needs --teacher RUN_DIR (a larger run trained by tinyfake)")
    tables: dict = {}
    for attr, (key, groups) in METHOD_ARGS.items():
        value = getattr(args, attr, None)
        if value is None:
            continue
        if args.method not in groups:
            raise UserError(f"--{attr.replace('_', '-')} applies to --method {' or '.join(groups)}, "
                            f"not {args.method}")
        if attr in ("init", "teacher"):  # absolute: later stages run from anywhere
            value = str(Path(value).resolve())
        tables.setdefault(groups[args.method], {})[key] = value
    return tables


def augment_option(args) -> str:
    if args.no_augment and args.augment not in (None, "none"):
        raise UserError(f"--no-augment contradicts --augment {args.augment}; give one of them")
    return "none" if args.no_augment else (args.augment or TRAIN_DEFAULTS["augment"])


def config_from_args(args) -> dict:
    model_kwargs = {}
    if args.arch == "phinet":
        model_kwargs = dict(alpha=args.alpha, beta=args.beta, t_zero=args.t_zero,
                            num_layers=args.num_layers, squeeze_excite=not args.no_squeeze_excite,
                            h_swish=not args.no_hard_swish)
    channels = getattr(args, "channels", "rgb") or "rgb"
    if args.method in INIT_METHODS:
        if channels != "rgb":
            raise UserError(f"--method {args.method} takes the model (its input channels included) "
                            "from --init; leave out --channels")
    else:
        check_channels(channels, args.size)  # before any data is loaded
        model_kwargs["channels"] = channels
    return make_config(args.data, args.size, args.arch, seed=args.seed,
                       skip_corrupt=args.skip_corrupt, detect_faces=args.detect_faces,
                       model_kwargs=model_kwargs, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
                       augment=augment_option(args), workers=args.workers, device=args.device,
                       method=args.method,
                       **method_tables(args))


def check_run_name(name: str) -> str:
    """A run name is one folder inside the runs directory, never a path out of it."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"run name {name!r} must be a plain folder name (no /, no leading dot); "
                        "use --runs-dir to put runs elsewhere")
    return name


def check_new_run(run_dir: RunDir, force: bool) -> None:
    """Retraining into an existing run needs --force: it deletes what the run holds."""
    if not force and run_dir.checkpoint.exists() and not run_dir.model_pt.exists():
        raise UserError(f"{run_dir.root} holds a training that stopped; continue it with "
                        f"`tinyfake train --resume {run_dir.root}`, or start it again with --force")
    if not force and run_dir.holds_training():
        raise UserError(f"{run_dir.root} already holds a trained model; give another --name, or "
                        "--force to retrain it (its export, compiled C, firmware and reports are deleted)")


def writer_lock(run_dir: RunDir):
    """The run's lock; under torchrun only rank 0 writes the run, so only it holds the lock."""
    return run_dir.lock() if os.environ.get("RANK", "0") == "0" else nullcontext()


# Options that choose where and how fast a run trains, not what it trains.
NOT_TRAINING = {"name", "force", "runs_dir", "threads", "device", "workers", "config", "resume"}


def rerun_config(args) -> tuple[dict, str]:
    """(config, default run name) of `--config FILE`: the file's [data], [model]
    and [train], checked like any run's; its [made] keeps the data digest the
    rerun must match. Other training options on the command line are refused."""
    import tomllib

    defaults = option_defaults()
    given = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                   if k in defaults and k not in NOT_TRAINING and v != defaults[k])
    if given:
        raise UserError(f"--config gives every training option; drop {', '.join(given)} "
                        "(or train without --config)")
    path = Path(args.config)
    try:
        saved = tomllib.loads(path.read_text())
        data, model, t = dict(saved["data"]), dict(saved["model"]), dict(saved["train"])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except (KeyError, TypeError):
        raise UserError(f"{path} is not a run's config.toml (it needs [data], [model] and [train])") from None
    t.update(device=args.device, workers=args.workers)
    train_seed = t.pop("seed", None)
    config = make_config(data.pop("source"), data.pop("size"), model.pop("arch"), seed=data.pop("seed", 0),
                         fractions=data.pop("fractions", FRACTIONS),
                         skip_corrupt=data.pop("skip_corrupt", False),
                         detect_faces=data.pop("detect_faces", False), model_kwargs=model, **t)
    if train_seed is not None:
        config["train"]["seed"] = train_seed
    if "made" in saved:
        config["made"] = saved["made"]
    return config, f"{path.resolve().parent.name}_rerun"


def resume_config(args) -> tuple[dict, RunDir]:
    """The stopped run's own config, with the options that do not change the result."""
    run_dir = RunDir.existing(args.resume)
    config = run_dir.read_config()
    config["train"].update(device=args.device, workers=args.workers)
    return config, run_dir


def run(args) -> int:
    from tinyfake.train.supervised import train  # torch: only once a command runs

    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.resume:
        config, run_dir = resume_config(args)
        with writer_lock(run_dir):
            return report(run_dir, train(config, run_dir, threads=args.threads, resume=True))
    if args.config:
        config, name = rerun_config(args)
        name = args.name or name
    else:
        if args.recipe:
            apply_recipe(args)
        config = config_from_args(args)
        name = args.name or default_name(args, config)
    run_dir = RunDir(Path(args.runs_dir) / check_run_name(name))
    check_new_run(run_dir, args.force)
    with writer_lock(run_dir):
        return report(run_dir, train(config, run_dir, threads=args.threads))


def default_name(args, config: dict) -> str:
    """<arch><size>[_fftlbp]_<data name>[_<method>], or <init run>_<method>."""
    if args.method in INIT_METHODS:
        return f"{Path(args.init).resolve().name}_{args.method}"
    data_name = "default" if config["data"]["source"] == "default" else Path(config["data"]["source"]).stem
    chan = "_fftlbp" if config["model"].get("channels", "rgb") != "rgb" else ""
    name = f"{args.arch}{args.size}{chan}_{data_name}"
    return name if args.method == "supervised" else f"{name}_{args.method}"


def report(run_dir: RunDir, m: dict | None) -> int:
    if m is None:  # a torchrun rank that does not write
        return 0
    val, test = m["val"], m["test"]
    print(f"trained {run_dir.root}: best epoch {m['best_epoch']}/{m['epochs_run']}, "
          f"{m['params']} params, {m['macs']} MACs, {m['seconds']:.0f} s")
    for split, r in (("val", val), ("test", test)):
        if r:
            print(f"  {split:4s} n={r['n']:4d}  accuracy {r['accuracy']:.3f}  auc {r['auc']:.3f}  "
                  f"f1 {r['f1']:.3f}  eer {r['eer']:.3f}")
    return 0
