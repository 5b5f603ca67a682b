"""bench.losses: every loss behind one registry (``make_loss``), per-sample values.

``loss(logits [..., C], target int64 [...], progress=0.0)`` -> per-sample loss ``[...]``.
Importing this package imports each family module, which registers its losses (in this
order, so the UCI losses lead ``list_losses()``), then any user module in this folder whose
name does not start with ``_`` (README: "Add your own loss").
"""

import importlib as _importlib
import pkgutil as _pkgutil

from bench.losses._base import ClosedFormLoss, Loss
from bench.losses._registry import list_losses, loss_label, make_loss, register_loss

__all__ = ["ClosedFormLoss", "Loss", "gradient_volume", "list_losses", "loss_label", "make_loss",
           "mix_gradient_volume", "register_loss"]

FAMILIES = ("_mixing", "_noisy", "_two_scale", "_baselines")

for _name in FAMILIES:
    _importlib.import_module(f"{__name__}.{_name}")
from bench.losses._baselines import gradient_volume, mix_gradient_volume  # noqa: E402

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module.name}")
