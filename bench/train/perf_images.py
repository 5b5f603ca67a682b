"""Image-trainer overhead: ``python -m bench.train.perf_images [--out results/perf/images.json]``.

Training throughput (images/s) of the torch trainer's epoch (``Run.train_epoch``: device
batches, the loss through its public hooks, optimiser, RNG streams) against a bare torch loop
(the same model, batches, SGD step and ``F.cross_entropy``) in the same process, alternated
over several repetitions so that machine load hits both alike; the ratio is the overhead. Also
the trainer's throughput with the ``cifar_standard`` augmentation, and with evaluation, and
the device it ran on. Data: a generated archive in the CIFAR-10 format through the real loader.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _bare_epoch(model, opt, x_all, y_all, perm, batch_size: int) -> None:
    from torch.nn import functional

    model.train()
    for a in range(0, len(perm), batch_size):
        idx = perm[a:a + batch_size]
        x = x_all[idx].float().div_(255)
        loss = functional.cross_entropy(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def measure(model_name: str, batch_size: int, n_train: int, reps: int, device: str) -> dict:
    import torch

    from bench.data import get_dataset
    from bench.data.images.synth import write_cifar_archive
    from bench.models import create_model
    from bench.spec import RunSpec
    from bench.train._run import make_augment
    from bench.train.torch_trainer import Run, _context, make_data

    with tempfile.TemporaryDirectory() as tmp:
        archive = write_cifar_archive(Path(tmp) / "cifar-10-python.tar.gz",
                                      n_per_batch=max(1, n_train // 5) + 10)
        ds = get_dataset("cifar10", str(archive))
        split = ds.splits("official")[0]
        split = (split[0][:n_train], split[1], split[2])
        spec = RunSpec(dataset="cifar10", model=model_name, protocol="official", lr=0.05,
                       batch_size=batch_size, epochs=reps + 1, device=device, progress=False)
        dev = torch.device(device)
        data = make_data(ds, split, dev, "auto", lambda m: None)
        run = Run(spec, ds, data, dev, None, lambda m: None)
        ctx = _context(run, ds, split, None, lambda m: None)
        model = create_model(model_name, input_shape=ds.input_shape, n_classes=10,
                             seed=0).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x_all = torch.from_numpy(ds.X[split[0]]).to(dev)
        y_all = torch.from_numpy(ds.y[split[0]]).to(dev)
        gen = torch.Generator().manual_seed(0)

        def sync() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize()

        trainer, bare = [], []
        run.train_epoch(0, ctx)  # warm-up of both (allocator, kernels)
        _bare_epoch(model, opt, x_all, y_all, torch.randperm(len(y_all), generator=gen),
                    batch_size)
        for rep in range(reps):
            sync()
            start = time.perf_counter()
            run.train_epoch(rep + 1, ctx)
            sync()
            trainer.append(n_train / (time.perf_counter() - start))
            perm = torch.randperm(len(y_all), generator=gen)
            sync()
            start = time.perf_counter()
            _bare_epoch(model, opt, x_all, y_all, perm, batch_size)
            sync()
            bare.append(n_train / (time.perf_counter() - start))
        aug_spec = spec.replace(augment="cifar_standard")
        aug_run = Run(aug_spec, ds, data, dev, make_augment(aug_spec, ds, split), lambda m: None)
        aug_ctx = _context(aug_run, ds, split, None, lambda m: None)
        aug_run.train_epoch(0, aug_ctx)
        sync()
        start = time.perf_counter()
        aug_run.train_epoch(1, aug_ctx)
        sync()
        augmented = n_train / (time.perf_counter() - start)
    t, b = statistics.median(trainer), statistics.median(bare)
    return {"model": model_name, "batch_size": batch_size, "n_train": n_train, "reps": reps,
            "device": device, "trainer_images_per_s": round(t, 1),
            "bare_images_per_s": round(b, 1), "trainer_over_bare": round(t / b, 3),
            "overhead_pct": round(100 * (b / t - 1), 1),
            "trainer_cifar_standard_images_per_s": round(augmented, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train.perf_images",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    import torch

    from bench.io import write_json

    torch.set_num_threads(args.threads)
    report = {"python": platform.python_version(), "torch": torch.__version__,
              "machine": platform.machine(), "threads": args.threads,
              "result": measure(args.model, args.batch_size, args.n_train, args.reps,
                                args.device)}
    print(json.dumps(report, indent=1))
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
