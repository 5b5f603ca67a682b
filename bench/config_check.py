"""One-line explanations of config schema errors (issue 15: a typo printed ~130 lines).

jsonschema's `ValidationError` prints the whole schema and instance; Snakemake wraps it in a
`WorkflowError`. `explain_validation_error` keeps what a user needs: the file and line, the
key, what was expected (with a close spelling for an unknown key) and what was found.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_MAX_REPR = 60


def _validation_error(err: BaseException) -> Any | None:
    """The jsonschema ValidationError in ``err``, its args or its cause chain."""
    from jsonschema.exceptions import ValidationError

    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ValidationError):
            return item
        if isinstance(item, BaseException):
            stack += [*item.args, item.__cause__, item.__context__]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _key_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _find_line(text: str, keys: Sequence[str]) -> int | None:
    """1-based line of the innermost of ``keys`` (nested mapping keys) in YAML ``text``."""
    line_no, start = None, 0
    lines = text.splitlines()
    for key in keys:
        pattern = re.compile(rf"^\s*(-\s+)?['\"]?{re.escape(key)}['\"]?\s*:")
        for i in range(start, len(lines)):
            if pattern.match(lines[i]):
                line_no, start = i + 1, i + 1
                break
        else:
            return line_no
    return line_no


def _where(config_path: str | os.PathLike | Sequence | None, keys: list[str]) -> str:
    paths = [config_path] if isinstance(config_path, str | os.PathLike) else list(config_path or [])
    for path in reversed(paths):  # the last config file given wins in Snakemake
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError):
            continue
        line = _find_line(text, keys) if keys else None
        if line is not None or not keys:
            return f"{path}, line {line}" if line else str(path)
    return ", ".join(map(str, paths)) or "config"


def _expected(err: Any) -> str:
    """What the failing schema asked for, in words."""
    validator, value, schema = err.validator, err.validator_value, err.schema
    instance = err.instance
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = [k for k in instance if k not in allowed]
        key = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        shown = allowed if len(allowed) <= 8 else [*allowed[:6], f"… {len(allowed)} in all"]
        return f"unknown key '{key}' (allowed: {', '.join(shown)}){hint}"
    if validator == "required":
        missing = [k for k in value if k not in instance]
        return f"missing required key {', '.join(repr(k) for k in missing)}"
    if validator == "enum":
        close = difflib.get_close_matches(str(instance), [str(v) for v in value], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"expected one of {', '.join(map(str, value))}, got {_short(instance)}{hint}"
    if validator == "type":
        kinds = value if isinstance(value, list) else [value]
        return f"expected {' or '.join(kinds)}, got {type(instance).__name__} {_short(instance)}"
    if validator in ("oneOf", "anyOf") and "description" in schema:
        return f"expected {schema['description']}, got {_short(instance)}"
    message = err.message if len(err.message) <= 2 * _MAX_REPR else (
        f"{validator} {_short(value)} not met by {_short(instance)}")
    return message


def explain_validation_error(err: BaseException,
                             config_path: str | os.PathLike | Sequence | None = None) -> str:
    """One line: ``<file>, line <n>: key '<path>': <what was expected, what was found>``.

    ``err`` is a jsonschema ValidationError or an exception wrapping one (Snakemake's
    WorkflowError); ``config_path`` the config file(s) (``workflow.configfiles``), used to name
    the file and find the line. Without a ValidationError inside, the first line of ``err``.
    """
    verr = _validation_error(err)
    if verr is None:
        first = str(err).strip().splitlines()
        return first[0] if first else type(err).__name__
    keys = [str(p) for p in verr.absolute_path if not isinstance(p, int)]
    if verr.validator == "additionalProperties":
        allowed = verr.schema.get("properties", {})
        unknown = [k for k in verr.instance if k not in allowed]
        keys += unknown[:1]
    path = _key_path(verr.absolute_path)
    where = _where(config_path, keys)
    what = f"key '{path}': " if path else ""
    return f"{where}: {what}{_expected(verr)}"


def validate_config(config: dict, schema: str | os.PathLike,
                    config_path: str | os.PathLike | Sequence | None = None) -> None:
    """Snakemake's `validate` (fills schema defaults), raising a WorkflowError of one line.

    ``schema`` must be an absolute path (Snakemake resolves relative ones against the calling
    Snakefile, which this wrapper is not).
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema))
    except WorkflowError as err:
        raise WorkflowError(explain_validation_error(err, config_path)) from None


def validate_config_or_exit(config: dict, schema: str | os.PathLike,
                            config_path: str | os.PathLike | Sequence | None = None) -> None:
    """For a Snakefile: `validate_config`, or print ``config error: <line>`` and exit 2.

    A WorkflowError raised in a Snakefile is printed with a traceback of the Snakefile; an
    exit with the CLI's code for bad input keeps it to the one line.
    """
    from snakemake.exceptions import WorkflowError

    try:
        validate_config(config, schema, config_path)
    except WorkflowError as err:
        print(f"config error: {err.args[0] if err.args else err}", file=sys.stderr)
        raise SystemExit(2) from None
