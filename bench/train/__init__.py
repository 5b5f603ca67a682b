"""Trainers: the stacked engine and the per-model torch trainer behind one contract.

``train_specs(specs, dataset)`` groups run specs into grids, trains each grid with the
stacked engine where it can and with the torch trainer otherwise, and returns long tables
(``RunResult``); ``train_stack`` is the stacked engine itself.
"""

from bench.train._naive import train_naive
from bench.train._run import RunResult, group_specs, stacked_refusal, train_specs
from bench.train._select import best_epochs, best_lrs
from bench.train._stack import StackSpec, train_stack

__all__ = ["RunResult", "StackSpec", "best_epochs", "best_lrs", "group_specs",
           "stacked_refusal", "train_naive", "train_specs", "train_stack"]
