"""`lossbench` console script: dispatches to one module per subcommand.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand is chosen, so
``lossbench analyze`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.errors import LossbenchError

# subcommand -> module implementing it
COMMANDS: dict[str, str] = {
    "datasets": "bench.data._cli",
    "losses": "bench._losses_cli",
    "train": "bench.train._cli",
    "run": "bench.train._run_cli",
    "studies": "bench._studies_cli",
    "figure": "bench.figures._cli",
    "probe": "bench.probes._cli",
    "collect": "analysis.collect_cli",
    "select": "analysis.select_cli",
    "buckets": "analysis.buckets_cli",
    "escaping-verdict": "analysis.escaping_cli",
    "analyze": "analysis._cli",
    "noise-curves": "analysis.noise_cli",
    "q-sweep": "analysis.qsweep_cli",
    "transitions": "analysis.transitions_cli",
    "two-scale-curves": "analysis.two_scale_cli",
    "report": "analysis.report_cli",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossbench",
        description="Benchmark and statistics suite for classification losses.",
    )
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="a file registering models/datasets/losses (repeatable; also "
                             "$LOSSBENCH_PLUGINS)")
    parser.add_argument("command", choices=sorted(COMMANDS), help="subcommand to run")
    return parser


def _split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """Leading ``--plugin FILE`` / ``--plugin=FILE`` options, and the rest of argv."""
    plugins = []
    while argv and argv[0].startswith("--plugin"):
        if argv[0] == "--plugin" and len(argv) > 1:
            plugins.append(argv[1])
            argv = argv[2:]
        elif argv[0].startswith("--plugin="):
            plugins.append(argv[0].split("=", 1)[1])
            argv = argv[1:]
        else:
            break
    return plugins, argv


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins, argv = _split_plugins(argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1] or ["--help"])
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[command])
    parser = argparse.ArgumentParser(prog=f"lossbench {command}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        from bench.plugins import load_plugins, plugin_paths

        load_plugins(plugin_paths(plugins))
        return int(module.run(args) or 0)
    except LossbenchError as exc:
        print(f"lossbench {command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
