"""Benchmark the data layer: ``python -m bench.data.uci.perf [--source S] [--splits-source S]``.

Prints JSON: seconds for the first parse of the whole collection into an empty temporary
cache (tarball extraction included), and for loading every dataset again from that cache.
Targets (2 cores): first parse <= 60 s, load-all from cache <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from bench.errors import DatasetMissingError


def _load_all(source: str | None, splits_source: str | None) -> tuple[int, list[str], int]:
    from bench.data import load, names

    loaded, missing, rows = 0, [], 0
    for name in names():
        try:
            ds = load(name, source, splits_source)
        except DatasetMissingError:
            missing.append(name)
            continue
        if splits_source is not None:
            ds.splits("klambauer4")
        loaded += 1
        rows += ds.n_samples
    return loaded, missing, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None)
    parser.add_argument("--splits-source", default=None)
    args = parser.parse_args(argv)
    source = args.source or os.environ.get("LOSSBENCH_UCI121")
    splits = args.splits_source or os.environ.get("LOSSBENCH_UCI121_SPLITS")
    saved = os.environ.get("LOSSBENCH_CACHE")
    with tempfile.TemporaryDirectory(prefix="lossbench-perf-") as cache:
        os.environ["LOSSBENCH_CACHE"] = cache
        try:
            start = time.perf_counter()
            loaded, missing, rows = _load_all(source, splits)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            _load_all(source, splits)
            warm = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("LOSSBENCH_CACHE", None)
            else:
                os.environ["LOSSBENCH_CACHE"] = saved
    print(json.dumps({
        "source": source, "splits_source": splits, "datasets_loaded": loaded,
        "missing": missing, "total_rows": rows, "cpu_count": os.cpu_count(),
        "first_parse_s": round(cold, 2), "load_all_from_cache_s": round(warm, 2),
        "targets_s": {"first_parse": 60, "load_all_from_cache": 5},
    }, indent=1))


if __name__ == "__main__":
    main()
