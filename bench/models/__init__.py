"""bench.models: every architecture behind one registry (``create_model``), plain torch.

``create_model(name, *, input_shape, n_classes, seed, **params) -> nn.Module``. Importing
this package imports each family module (``tabular``, ``image``, ...), which registers its
models, then any user module in this folder whose name does not start with ``_``
(README: "Add your own model").

A model registered ``stackable=True`` also gives the stacked engine its stacked form
(``stacked_form``): the engine never names an architecture.
"""

import importlib as _importlib

from bench.models._registry import (
    DenseChain,
    create_model,
    list_models,
    model_family,
    model_params_for,
    register_model,
    stacked_form,
)

__all__ = ["DenseChain", "create_model", "list_models", "model_family", "model_params_for",
           "register_model", "stacked_form"]

FAMILIES = ("tabular", "image", "text")

for _name in FAMILIES:
    try:
        _importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _err:  # a family package not written yet
        if _err.name != f"{__name__}.{_name}":
            raise

from bench.registry import import_user_modules as _import_user_modules  # noqa: E402

_import_user_modules(__name__, __path__, skip=FAMILIES)
