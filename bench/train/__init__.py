"""Trainers: the stacked engine and the per-model torch trainer behind one contract.

``train_specs(specs, dataset)`` groups run specs into grids, trains each grid with the
stacked engine where it can and with the torch trainer otherwise, and returns long tables
(``RunResult``); ``train_stack`` is the stacked engine itself, ``fit_torch`` the per-model
trainer (and the reference the stack is tested against). ``register_score`` adds an official
metric a dataset may declare (``SCORES``: accuracy, f1, mcc).
"""

from bench.train._metrics import SCORES, register_score
from bench.train._run import RunResult, group_specs, stacked_refusal, train_specs
from bench.train._select import best_epochs, best_lrs
from bench.train._stack import StackSpec, train_stack
from bench.train.torch_trainer import fit_torch, fit_torch_grid

__all__ = ["SCORES", "RunResult", "StackSpec", "best_epochs", "best_lrs", "fit_torch",
           "fit_torch_grid", "group_specs", "register_score", "stacked_refusal", "train_specs",
           "train_stack"]
