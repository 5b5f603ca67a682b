"""Registry, shared contract of every loss, input validation and the README example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

import bench.losses
from bench.errors import LossbenchError
from bench.losses import list_losses, loss_label, make_loss

REPO = Path(__file__).resolve().parents[2]
#: The library's own losses (other test modules may register helpers of their own).
BUILTIN = [i for f in ("mixing", "noisy", "two_scale", "baselines") for i in list_losses(f)]
PLAIN = [i for i in BUILTIN if not make_loss(i).needs]


def test_registry_lists_every_family():
    ids = list_losses()
    assert ids[:6] == ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
    for i in ["ce_el", "mae", "gce", "trunc_gce", "forward", "two_scale", "two_scale_fixed",
              "two_scale_sep", "cot", "mpce", "ce_gradnorm"]:
        assert i in ids
    assert list_losses("noisy") == ["mae", "gce", "trunc_gce", "forward"]
    assert loss_label("ce_el_0to05") == "CE+EL F=0–0.5"
    assert loss_label("not_a_loss") == "not_a_loss"


def test_every_configured_loss_exists():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for i in config["losses"]:
        assert i in list_losses()


@pytest.mark.parametrize("loss_id", BUILTIN)
def test_every_loss_has_id_label_needs(loss_id):
    loss = make_loss(loss_id)
    assert loss.id == loss_id and isinstance(loss.label, str) and loss.label
    assert isinstance(loss.needs, frozenset)
    known = {"sample_weights", "scale_params", "weight_norm", "complement_pass",
             "lr_multiplier", "transition_matrix", "best_model"}
    assert loss.needs <= known


@pytest.mark.parametrize("loss_id", PLAIN)
def test_plain_losses_finite_values_gradients_and_stacks(loss_id):
    loss = make_loss(loss_id)
    logits = 4 * torch.randn(3, 6, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (3, 6))
    for progress in (0.0, 0.5, 1.0):
        z = logits.clone().requires_grad_(True)
        values = loss(z, target, progress)
        assert values.shape == (3, 6) and bool(torch.isfinite(values).all())
        (g,) = torch.autograd.grad(values.sum(), z)
        assert bool(torch.isfinite(g).all())
        if hasattr(loss, "grad_logits"):
            torch.testing.assert_close(loss.grad_logits(logits, target, progress), g,
                                       rtol=1e-9, atol=1e-12)
        for k in range(3):
            torch.testing.assert_close(values[k].detach(), loss(logits[k], target[k], progress))


def test_unknown_id_and_parameter():
    with pytest.raises(LossbenchError, match=r"Unknown loss 'focall'\. Known losses: ce, el"):
        make_loss("focall")
    with pytest.raises(LossbenchError, match="unknown parameter 'q'.*Known parameters: gamma"):
        make_loss("focal", q=0.7)
    with pytest.raises(LossbenchError, match="unknown parameter 'q'.*\\(none\\)"):
        make_loss("ce", q=0.7)
    with pytest.raises(LossbenchError, match=r"'q' parameter of make_loss\('gce'\)"):
        make_loss("gce", q=0.0)


def test_renamed_id_warns():
    with pytest.warns(FutureWarning, match="renamed to 'ce_el_0'"):
        assert make_loss("ce_el_f0").id == "ce_el_0"


@pytest.mark.parametrize(
    ("logits", "target", "match"),
    [
        (torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), "NaN/inf"),
        (torch.tensor([[0.0, float("inf")]]), torch.tensor([0]), "NaN/inf"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), r"target values must be in \[0, 2\]"),
        (torch.zeros(2, 3), torch.tensor([0, -1]), r"target values must be in \[0, 2\]"),
        (torch.zeros(2, 3), torch.tensor([0, 1, 2]), "target shape"),
        (torch.zeros(2, 3), torch.tensor([0.0, 1.0]), "int64"),
        (torch.zeros(2, 3, dtype=torch.int64), torch.tensor([0, 1]), "floating-point"),
        (torch.zeros(2, 1), torch.tensor([0, 0]), "C >= 2"),
        ([[0.0, 1.0]], torch.tensor([0]), "floating-point"),
    ],
)
def test_bad_inputs_one_clear_error(logits, target, match):
    for loss_id in ["ce", "focal", "gce", "mpce"]:
        loss = make_loss(loss_id)
        with pytest.raises(LossbenchError, match=match) as err:
            loss(logits, target)
        assert "\n" not in str(err.value)
        with pytest.raises(LossbenchError, match=match):
            loss.grad_logits(logits, target)


def test_unexpected_extra_input():
    with pytest.raises(LossbenchError, match="takes no extra inputs"):
        make_loss("ce")(torch.zeros(2, 3), torch.tensor([0, 1]), sample_weights=torch.ones(2))


def test_register_user_loss_in_a_few_lines(registry_snapshot):
    @bench.losses.register_loss("sq_err", label="Squared error")
    class SquaredError(bench.losses.Loss):
        def per_sample(self, logits, target, progress=0.0):
            onehot = torch.nn.functional.one_hot(target, logits.shape[-1])
            return ((torch.softmax(logits, -1) - onehot) ** 2).sum(-1)

    loss = make_loss("sq_err")
    assert loss.id == "sq_err" and loss.label == "Squared error" and loss.needs == frozenset()
    v = loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))
    torch.testing.assert_close(v, torch.full((4,), 0.5))
    with pytest.raises(LossbenchError, match="progress"):
        loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64), 2.0)
    with pytest.raises(LossbenchError, match="already registered"):
        bench.losses.register_loss("sq_err")(SquaredError)


@pytest.fixture
def registry_snapshot():
    """Undo registrations made by a test (the registry is global)."""
    from bench.losses import _registry

    saved = [dict(d) for d in (_registry._REGISTRY, _registry._LABELS, _registry._FAMILIES)]
    yield
    for d, s in zip((_registry._REGISTRY, _registry._LABELS, _registry._FAMILIES), saved,
                    strict=True):
        d.clear()
        d.update(s)


def _readme_losses_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- section: losses -->")
    return text[start:text.index("<!-- /section: losses -->", start)]


def test_readme_example_runs(registry_snapshot, capsys):
    section = _readme_losses_section()
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    config = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(code) == 2 and len(config) == 1  # the module, then its use
    namespace = {"__name__": "readme_example"}
    for block in code:
        exec(compile(block, "README.md (losses)", "exec"), namespace)
    assert capsys.readouterr().out.strip().startswith("torch.Size([8])")
    ids = yaml.safe_load(config[0])["losses"]
    assert "ce_smooth" in ids and all(i in list_losses() for i in ids)
    loss = make_loss("ce_smooth", epsilon=0.0)
    logits, target = torch.randn(5, 4), torch.randint(0, 4, (5,))
    torch.testing.assert_close(loss(logits, target), make_loss("ce")(logits, target))
    assert loss_label("ce_smooth") == "CE+LS 0.1"


def test_readme_lists_every_loss():
    section = _readme_losses_section()
    for i in BUILTIN:
        assert f"| `{i}` |" in section, i
