"""`lossbench train`: train a grid of run specs on one dataset; write CSVs atomically to --out.

Every ``RunSpec`` field has a flag; ``--losses``, ``--lrs``, ``--seeds`` and ``--model`` take
comma-separated lists and the job trains their product (x the protocol's folds), as the UCI
pipeline does. ``--spec FILE`` reads specs from YAML instead. Old flags keep working
(``--arch`` is ``--model``). ``--noise uniform:0.2,pair:0.1,none`` is one more grid axis
(label noise levels; ``none``/``clean`` = clean labels).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Collection
from pathlib import Path

from bench.errors import LossbenchError

HELP = "Train a grid of runs (models x losses x lrs x seeds x folds) on one dataset; write CSVs."

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


def _methods(text: str) -> list[str]:
    """``--losses`` items split on top-level commas: ``ce,forward(T=true),gce(q=0.5)``."""
    items, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise argparse.ArgumentTypeError(f"--losses: unbalanced ')' in {text!r}")
        if ch == "," and depth == 0:
            items.append(text[start:k])
            start = k + 1
    if depth:
        raise argparse.ArgumentTypeError(f"--losses: unbalanced '(' in {text!r}")
    items.append(text[start:])
    return [t.strip() for t in items if t.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    grid = parser.add_argument_group("grid (comma-separated lists; the job trains their product)")
    grid.add_argument("--dataset", help="dataset name (see `lossbench datasets`)")
    grid.add_argument("--model", "--arch", dest="model", type=_csv(str, "--model"),
                      help="registered model name(s), e.g. linear,mlp (--arch: old name)")
    grid.add_argument("--losses", "--loss", dest="losses", type=_methods,
                      default=PAPER_LOSSES.split(","),
                      help=f"loss ids, or ID(NAME=VALUE, ...) for a variant, e.g. "
                           f"forward(T=true) (default: {PAPER_LOSSES})")
    grid.add_argument("--lrs", "--lr", dest="lrs", type=_csv(float, "--lrs"),
                      default=[0.01, 0.005, 0.001])
    grid.add_argument("--seeds", "--seed", dest="seeds", type=_csv(int, "--seeds"),
                      default=[0, 1])
    grid.add_argument("--folds", type=_csv(int, "--folds"), default=None,
                      help="fold indexes to run (default: every fold of the protocol)")
    grid.add_argument("--noise", type=_csv(str, "--noise"), default=["none"],
                      help="label noise levels KIND:RATE (kinds: bench.noise, e.g. "
                           "uniform:0.4,pair:0.2) or none/clean; train and validation labels "
                           "are corrupted per seed, test labels stay clean (default: none)")
    grid.add_argument("--noise-mapping", default=None, metavar="NAME",
                      help="class -> class table of the kinds that flip to a target class "
                           "(pair; default next: i -> i + 1 mod C)")
    spec = parser.add_argument_group("run spec (bench.spec.RunSpec)")
    spec.add_argument("--spec", default=None,
                      help="YAML file with one spec (mapping) or a list of specs; replaces the "
                           "grid flags")
    spec.add_argument("--protocol", default="klambauer", help="split protocol (registered)")
    spec.add_argument("--loss-param", action="append", default=[], metavar="[LOSS:]NAME=VALUE",
                      help="loss parameter, repeatable (e.g. q=0.5 or gce:q=0.5)")
    spec.add_argument("--model-param", action="append", default=[], metavar="NAME=VALUE",
                      help="model parameter, repeatable (e.g. dropout=0.2)")
    spec.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    spec.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    spec.add_argument("--nesterov", action="store_true")
    spec.add_argument("--weight-decay", type=float, default=0.0)
    spec.add_argument("--schedule", choices=("constant", "multistep", "cosine"),
                      default="constant")
    spec.add_argument("--milestones", type=_csv(int, "--milestones"), default=[])
    spec.add_argument("--gamma", type=float, default=0.1)
    spec.add_argument("--epochs", type=int, default=50)
    spec.add_argument("--batch-size", type=int, default=8)
    spec.add_argument("--augment", default="none", help="named augmentation pipeline")
    spec.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    spec.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    spec.add_argument("--save-predictions-at", type=_csv(int, "--save-predictions-at"),
                      default=[], help="epochs at which per-sample test predictions are saved")
    spec.add_argument("--eval-every", type=int, default=0,
                      help="also evaluate every N iterations (torch trainer; iterations.csv)")
    run = parser.add_argument_group("execution")
    run.add_argument("--trainer", choices=("auto", "stacked", "torch"), default="auto",
                     help="auto: stacked where the model and losses allow it, else torch")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--source", default=None, help="dataset source: URL, archive or folder")
    run.add_argument("--splits-source", default=None, help="UCI: Klambauer split files source")
    run.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_out(out: str) -> Path:
    """The output folder, checked before any work: not a file, creatable, writable."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise LossbenchError(f"--out {out}: exists and is not a folder")
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    import os

    if not os.access(parent, os.W_OK | os.X_OK):
        raise LossbenchError(f"--out {out}: {parent} is not writable")
    return path


def _params(items: list[str], flag: str, names: list[str],
            registered: Collection[str] = ()) -> dict[str, dict]:
    """``[LOSS:]NAME=VALUE`` flags -> {loss or '*': {name: value}}.

    A scope in ``registered`` but not in ``names`` (``--loss-param trunc_gce:...`` in a job
    without trunc_gce) is ignored: a study gives a dataset's loss parameters to each of its
    jobs, and jobs may split the losses. Any other unknown scope is an error.
    """
    from bench.spec import parse_param

    out: dict[str, dict] = {}
    for item in items:
        scope, sep, rest = item.partition(":")
        target, text = (scope, rest) if sep and "=" not in scope else ("*", item)
        if target != "*" and target not in names and target in registered:
            parse_param(text, flag)  # still one line for a malformed NAME=VALUE
            continue
        if target != "*" and target not in names:
            raise LossbenchError(f"{flag} {item!r}: {target!r} is not one of {', '.join(names)}")
        key, value = parse_param(text, flag)
        out.setdefault(target, {})[key] = value
    return out


def parse_noise(items: list[str], mapping: str | None) -> list[dict]:
    """``--noise`` levels -> spec noise dicts (``{}`` = clean); kinds and rate ranges checked
    here, the mapping against the dataset's classes when the labels are drawn."""
    from bench.noise import NOISE_KINDS, NOISE_MAPPINGS

    out = []
    for item in items:
        kind, sep, raw = item.partition(":")
        if kind in ("none", "clean") and not sep:
            out.append({})
            continue
        try:
            rate = float(raw)
        except ValueError:
            raise LossbenchError(f"--noise: expected KIND:RATE (e.g. uniform:0.4) or none; got "
                                 f"{item!r}") from None
        if kind not in NOISE_KINDS.names():
            raise LossbenchError(f"--noise {item!r}: unknown kind {kind!r}; known kinds: "
                                 f"{', '.join(NOISE_KINDS.names())}")
        entry = NOISE_KINDS.get(kind)
        if not 0.0 <= rate <= entry.meta["max_rate"]:
            raise LossbenchError(f"--noise {item!r}: rate must be in [0, "
                                 f"{entry.meta['max_rate']:g}]{entry.meta['why']}")
        level = {"kind": kind, "rate": rate}
        if mapping is not None and entry.meta["uses_mapping"]:
            level["mapping"] = mapping
        out.append(level)
    if mapping is not None:
        if mapping not in NOISE_MAPPINGS.names():
            raise LossbenchError(f"--noise-mapping: unknown mapping {mapping!r}; known: "
                                 f"{', '.join(NOISE_MAPPINGS.names())}")
        if not any("mapping" in level for level in out):
            raise LossbenchError(f"--noise-mapping {mapping!r}: no --noise level uses a mapping "
                                 f"(kinds that do: {', '.join(_mapping_kinds())})")
    return out


def _mapping_kinds() -> list[str]:
    from bench.noise import NOISE_KINDS

    return [k for k in NOISE_KINDS.names() if NOISE_KINDS.get(k).meta["uses_mapping"]]


# spec field -> the flag that sets it (a spec's one-line error names the flag too)
FLAG_OF = {"lr": "--lrs", "epochs": "--epochs", "batch_size": "--batch-size",
           "seed": "--seeds", "momentum": "--momentum", "weight_decay": "--weight-decay",
           "milestones": "--milestones", "gamma": "--gamma", "fold": "--folds",
           "save_predictions_at": "--save-predictions-at", "threads": "--threads"}


def specs_from_args(args: argparse.Namespace, n_folds: int):
    """The grid the flags describe, as RunSpecs (models x losses x lrs x seeds x folds)."""
    from bench.losses import list_losses
    from bench.spec import RunSpec, parse_method

    methods = [parse_method(m) for m in args.losses]
    loss_params = _params(args.loss_param, "--loss-param", [loss for loss, _ in methods],
                          list_losses())
    model_params = _params(args.model_param, "--model-param", args.model)
    folds = args.folds if args.folds is not None else list(range(n_folds))
    bad = [f for f in folds if not 0 <= f < n_folds]
    if bad:
        raise LossbenchError(f"--folds: protocol {args.protocol!r} has folds 0..{n_folds - 1}; "
                             f"got {bad}")
    for flag, values in (("--losses", args.losses), ("--lrs", args.lrs),
                         ("--seeds", args.seeds), ("--model", args.model),
                         ("--noise", args.noise)):
        if not values:
            raise LossbenchError(f"{flag}: expected at least one value")
        if len(set(values)) != len(values):
            raise LossbenchError(f"{flag}: duplicate values in {values}")
    common = dict(dataset=args.dataset, protocol=args.protocol, optimizer=args.optimizer,
                  momentum=args.momentum, nesterov=args.nesterov,
                  weight_decay=args.weight_decay, schedule=args.schedule,
                  milestones=tuple(args.milestones), gamma=args.gamma, epochs=args.epochs,
                  batch_size=args.batch_size, augment=args.augment, device=args.device,
                  amp=args.amp, save_predictions_at=tuple(args.save_predictions_at),
                  eval_every=args.eval_every,
                  threads=args.threads, progress=not args.no_progress)
    noises = parse_noise(args.noise, args.noise_mapping)
    specs = []
    try:
        for model in args.model:
            mparams = {**model_params.get("*", {}), **model_params.get(model, {})}
            for fold in folds:
                for seed in args.seeds:
                    for noise in noises:
                        for loss, inline in methods:
                            lparams = {**loss_params.get("*", {}), **loss_params.get(loss, {}),
                                       **inline}
                            for lr in args.lrs:
                                specs.append(RunSpec(model=model, model_params=mparams,
                                                     loss=loss, loss_params=lparams, lr=lr,
                                                     seed=seed, fold=fold, noise=noise,
                                                     **common))
    except LossbenchError as err:
        field = str(err).split("'")[1] if str(err).startswith("spec field '") else None
        if field in FLAG_OF:
            raise LossbenchError(f"{FLAG_OF[field]}: {err}") from None
        raise
    return specs


def check_specs(specs) -> None:
    """Names resolve and parameters are accepted, before any data is read or trained."""
    from bench.data import list_protocols
    from bench.models import list_models
    from bench.train._labels import build_loss, noise_of

    protocols = list_protocols()
    for protocol in {s.protocol for s in specs}:
        if protocol not in protocols:
            raise LossbenchError(f"--protocol: unknown split protocol {protocol!r}. Known "
                                 f"protocols: {', '.join(protocols)}")
    for spec in {(s.loss, s.loss_params): s for s in specs}.values():
        build_loss(spec)  # T: true (the true noise matrix) is resolved when labels are drawn
    for spec in {s.noise: s for s in specs}.values():
        noise_of(spec)
    models = list_models()
    for spec in specs:
        if spec.model not in models:
            raise LossbenchError(f"Unknown model {spec.model!r}. Known models: "
                                 f"{', '.join(models)}")


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from bench.data import get_dataset
    from bench.io import write_csv, write_json
    from bench.spec import load_spec_file
    from bench.train._run import train_specs
    from bench.train._tables import FLOAT_FORMAT

    out = check_out(args.out)
    if args.threads < 1:
        raise LossbenchError(f"--threads: expected an integer >= 1; got {args.threads}")
    if args.spec:
        specs = load_spec_file(args.spec)
        datasets = {s.dataset for s in specs}
        if len(datasets) != 1:
            raise LossbenchError(f"{args.spec}: expected specs of one dataset; got "
                                 f"{sorted(datasets)}")
        dataset_name = datasets.pop()
    else:
        if not args.dataset or not args.model:
            raise LossbenchError("--dataset and --model (or --arch) are required without --spec")
        dataset_name = args.dataset
        from bench.data import list_protocols

        if args.protocol not in list_protocols():
            raise LossbenchError(f"--protocol: unknown split protocol {args.protocol!r}; known: "
                                 f"{', '.join(list_protocols())}")
        specs = specs_from_args(args, n_folds=1)  # names and values checked before any load
    check_specs(specs)
    torch.set_num_threads(args.threads)
    dataset = get_dataset(dataset_name, args.source, **(
        {"splits_source": args.splits_source} if args.splits_source else {}))
    if not args.spec:
        specs = specs_from_args(args, n_folds=len(dataset.splits(args.protocol)))
    models = list(dict.fromkeys(s.model for s in specs))
    n_folds = len({s.fold for s in specs})
    started = time.time()
    # one tick per epoch of each (model, fold) stack, as the stacked engine reports them
    with tqdm(total=len(models) * n_folds * max(s.epochs for s in specs), desc=dataset_name,
              unit="epoch", disable=args.no_progress, mininterval=2.0) as bar:
        results = []
        for model in models:
            bar.set_description(f"{dataset_name}/{model}")
            results.append(train_specs([s for s in specs if s.model == model], dataset,
                                       trainer=args.trainer, log=bar.write,
                                       on_epoch=lambda _epoch: bar.update(1),
                                       checkpoint_dir=out / "checkpoints"))
    epochs = pd.concat([r.epochs for r in results], ignore_index=True)
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    write_csv(out / "epochs.csv", epochs, float_format=FLOAT_FORMAT)
    write_csv(out / "summary.csv", summary, float_format=FLOAT_FORMAT)
    iterations = [r.iterations for r in results if getattr(r, "iterations", None) is not None]
    if iterations:  # specs with eval_every: one row per model per record (IterationLog)
        write_csv(out / "iterations.csv", pd.concat(iterations, ignore_index=True),
                  float_format=FLOAT_FORMAT)
    transitions = [r.transitions for r in results if getattr(r, "transitions", None) is not None]
    if transitions:  # forward's T-hat of each (noise, seed), beside the true T
        write_csv(out / "transitions.csv", pd.concat(transitions, ignore_index=True),
                  float_format=FLOAT_FORMAT)
    write_json(out / "config.json", job_config(args, specs, dataset, results, models,
                                               time.time() - started))
    print(f"wrote {out}/summary.csv ({len(summary)} rows), epochs.csv "
          f"({len(epochs)} rows) in {time.time() - started:.1f} s")
    return 0


def job_config(args, specs, dataset, results, models, wall: float) -> dict:
    """config.json: the settings shared by the job's specs, its cost, and the environment."""
    import torch

    from bench.spec import varying_keys

    first = specs[0].to_dict()
    varying = set(varying_keys(specs))
    shared = {k: v for k, v in first.items()
              if k not in varying and k not in ("progress", "dataset", "model", "loss", "lr",
                                                "seed", "fold")}
    folds = sorted({s.fold for s in specs})
    n_per_model = len(specs) // len(models)
    selection = _selection(dataset, specs)
    noise = {"noise": [dict(n) for n in dict.fromkeys(s.noise for s in specs)]} \
        if any(s.noise for s in specs) else {}
    return {
        "dataset": dataset.name, "archs": models,
        "losses": list(dict.fromkeys(s.method for s in specs)),
        "lrs": list(dict.fromkeys(s.lr for s in specs)),
        "seeds": list(dict.fromkeys(s.seed for s in specs)), **noise,
        **{k: v for k, v in shared.items() if k in ("epochs", "batch_size", "optimizer",
                                                     "momentum", "protocol", "threads")},
        "spec": {k: v for k, v in shared.items()
                 if k not in ("epochs", "batch_size", "optimizer", "momentum", "protocol",
                              "threads")},
        "n_samples": int(dataset.X.shape[0]), "n_features": int(dataset.X[0].size),
        "n_classes": int(dataset.n_classes), **selection,
        "torch": torch.__version__, "python": platform.python_version(),
        "n_folds": len(folds), "n_models_per_arch": n_per_model,
        "per_model_losses": results[0].info["per_model_losses"],
        "trainers": {m: r.info["trainers"] for m, r in zip(models, results, strict=True)},
        "wall_time_s": round(wall, 3),
        "train_seconds": {m: r.info["train_seconds"] for m, r in zip(models, results,
                                                                      strict=True)},
        "model_steps": {m: r.info["model_steps"] for m, r in zip(models, results, strict=True)},
    }


def _selection(dataset, specs) -> dict:
    """``{"metric": ..., "selection": ...}`` when the job departs from the UCI defaults (epoch
    and lr by validation accuracy): a dataset with an official metric, a last-epoch protocol.
    Absent otherwise, so the UCI jobs' config.json stays as it was."""
    from bench.data import protocol_epoch
    from bench.train._metrics import dataset_score

    score = dataset_score(dataset)
    epoch = protocol_epoch(specs[0].protocol)
    if score is None and epoch == "best":
        return {}
    by = "val_score" if score is not None else "val_acc"
    rule = (f"best epoch and lr by {by}" if epoch == "best"
            else f"last epoch; lr by {by} there")
    return {"metric": score or "accuracy", "selection": rule}
