"""Config schema errors in one line (issue 15: a typo printed ~130 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.config_check import explain_validation_error, validate_config, validate_config_or_exit

pytest.importorskip("snakemake")
from snakemake.exceptions import WorkflowError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SMOKE = (REPO / "config" / "smoke.yaml").read_text()
DATASETS = SMOKE[SMOKE.index("datasets:\n"):SMOKE.index("archs:")]


def _config(tmp_path: Path, old: str, new: str) -> tuple[dict, Path]:
    assert old in SMOKE
    path = tmp_path / "my config.yaml"
    path.write_text(SMOKE.replace(old, new, 1))
    return yaml.safe_load(path.read_text()), path


def _line(path: Path, text: str) -> int:
    return next(i + 1 for i, line in enumerate(path.read_text().splitlines()) if text in line)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("epochs: 3", "epoch: 3", "unknown key 'epoch' (allowed: archs, "),
    ("losses:", "loses:", "did you mean 'losses'?"),
    ("mem_mb: 1000", "mem_m: 1000", "key 'resources.train': unknown key 'mem_m'"),
    ("archs: [linear, mlp]", "archs: [linear, mpl]",
     "key 'archs[1]': expected one of linear, mlp, got 'mpl'; did you mean 'mlp'?"),
    ("batch_size: 8", "batch_size: eight", "key 'batch_size': expected integer, got str 'eight'"),
    ("lrs: [0.01, 0.005, 0.001]", "lrs: [0.01, -0.005]",
     "key 'lrs[1]': -0.005 is less than or equal to the minimum of 0"),
    (DATASETS, "datasets: some\n", "key 'datasets': expected \"all\" or a list of dataset "
                                        "names, got 'some'"),
])
def test_one_line_names_file_line_key_and_expectation(tmp_path, old, new, expected):
    config, path = _config(tmp_path, old, new)
    with pytest.raises(WorkflowError) as info:
        validate_config(config, SCHEMA, [REPO / "config" / "config.yaml", path])
    message = info.value.args[0]
    assert "\n" not in message and len(message) < 300
    assert expected in message
    key = new.split(":")[0].strip() if ":" in new else None
    if key and key not in ("archs", "lrs"):
        assert message.startswith(f"{path}, line {_line(path, new.splitlines()[0])}: ")


def test_missing_required_key(tmp_path):
    config, path = _config(tmp_path, "lrs: [0.01, 0.005, 0.001]\n", "")
    with pytest.raises(WorkflowError, match=r"missing required key 'lrs'"):
        validate_config(config, SCHEMA, path)


def test_valid_config_gets_defaults_filled():
    config = yaml.safe_load(SMOKE)
    del config["threads"]
    validate_config(config, SCHEMA, "smoke.yaml")
    assert config["threads"] == 1 and config["paper_table"] is None  # the packaged table


def test_snakefile_helper_prints_one_line_and_exits_2(tmp_path, capsys):
    config, path = _config(tmp_path, "epochs: 3", "epoch: 3")
    with pytest.raises(SystemExit) as info:
        validate_config_or_exit(config, SCHEMA, path)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"config error: {path}, line ")


def test_other_exceptions_give_their_first_line():
    assert explain_validation_error(ValueError("first\nsecond")) == "first"
