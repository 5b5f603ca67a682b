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
    "figure": "bench.figures._cli",
    "collect": "analysis.collect_cli",
    "select": "analysis.select_cli",
    "analyze": "analysis._cli",
    "report": "analysis.report_cli",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossbench",
        description="Benchmark and statistics suite for classification losses.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="subcommand to run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1] or ["--help"])
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[command])
    parser = argparse.ArgumentParser(prog=f"lossbench {command}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except LossbenchError as exc:
        print(f"lossbench {command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
