"""`lossbench train`: one stacked fit of a dataset x architecture, written atomically to --out."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from bench.errors import LossbenchError

HELP = "Train every (loss, lr, seed[, fold]) of one dataset and architecture; write CSVs."

PAPER_LOSSES = "ce,el,ce_el_0,ce_el_0_05,ce_el_0to05,focal"


def _csv(kind, name: str):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__} values for {name}; got {text!r}"
            ) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `lossbench datasets`)")
    parser.add_argument("--arch", required=True, type=_csv(str, "--arch"),
                        help="linear, mlp or both (linear,mlp: one process, one import of torch)")
    parser.add_argument("--losses", type=_csv(str, "--losses"), default=PAPER_LOSSES.split(","),
                        help=f"loss ids (default: {PAPER_LOSSES})")
    parser.add_argument("--lrs", type=_csv(float, "--lrs"), default=[0.01, 0.005, 0.001])
    parser.add_argument("--seeds", type=_csv(int, "--seeds"), default=[0, 1])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--protocol", default="klambauer",
                        help="split protocol: klambauer, klambauer4, klambauer_swapped, holdout, "
                             "kfold4")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--source", default=None, help="UCI-121 URL, .tar.gz or folder")
    parser.add_argument("--splits-source", default=None, help="Klambauer split files source")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from bench.data import PROTOCOLS, load
    from bench.io import write_csv, write_json
    from bench.train._run import check_grid, train_dataset
    from bench.train._tables import FLOAT_FORMAT

    if args.protocol not in PROTOCOLS:
        raise LossbenchError(
            f"--protocol: unknown {args.protocol!r}; expected one of {', '.join(PROTOCOLS)}"
        )
    if args.threads < 1:
        raise LossbenchError(f"--threads: expected an integer >= 1; got {args.threads}")
    if args.optimizer == "sgd" and not 0 <= args.momentum < 1:
        raise LossbenchError(f"--momentum: expected a float in [0, 1); got {args.momentum}")
    check_grid(args.losses, args.lrs, args.seeds, args.epochs, args.batch_size)
    from bench.train._stack import dense_chain

    if not args.arch or len(set(args.arch)) != len(args.arch):
        raise LossbenchError(f"--arch: expected distinct model names; got {args.arch}")
    for arch in args.arch:
        dense_chain(arch, 1, 2)
    torch.set_num_threads(args.threads)
    dataset = load(args.dataset, args.source, args.splits_source)
    n_folds = len(dataset.splits(args.protocol))
    n_models = len(args.losses) * len(args.lrs) * len(args.seeds)
    started = time.time()
    results, info = [], {}
    with tqdm(total=n_folds * args.epochs * len(args.arch), desc=args.dataset, unit="epoch",
              disable=args.no_progress, mininterval=2.0) as bar:
        def on_epoch(_epoch: int) -> None:
            bar.update(1)
            rate = n_models * bar.n / max(bar.format_dict["elapsed"], 1e-9)
            bar.set_postfix(models_per_s=f"{rate:.0f}", refresh=False)

        for arch in args.arch:
            bar.set_description(f"{args.dataset}/{arch}")
            result = train_dataset(
                dataset, arch, args.losses, args.lrs, args.seeds, protocol=args.protocol,
                epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                momentum=args.momentum, log=bar.write, on_epoch=on_epoch,
            )
            results.append(result)
            for key, value in result.info.items():
                info.setdefault(key, {})[arch] = value
    epochs = pd.concat([r.epochs for r in results], ignore_index=True)
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    out = Path(args.out)
    write_csv(out / "epochs.csv", epochs, float_format=FLOAT_FORMAT)
    write_csv(out / "summary.csv", summary, float_format=FLOAT_FORMAT)
    config = {
        "dataset": args.dataset, "archs": args.arch, "losses": args.losses, "lrs": args.lrs,
        "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "momentum": args.momentum, "protocol": args.protocol,
        "threads": args.threads, "n_samples": dataset.n_samples,
        "n_features": dataset.n_features, "n_classes": dataset.n_classes,
        "torch": torch.__version__, "python": platform.python_version(),
        "n_folds": n_folds, "n_models_per_arch": n_models * n_folds,
        "per_model_losses": results[0].info["per_model_losses"],
        "wall_time_s": round(time.time() - started, 3),
        "train_seconds": info["train_seconds"], "model_steps": info["model_steps"],
    }
    write_json(out / "config.json", config)
    print(f"wrote {out}/summary.csv ({len(summary)} rows), epochs.csv "
          f"({len(epochs)} rows) in {config['wall_time_s']:.1f} s")
    return 0
