"""Training engine: many models of one dataset trained as one stack (see CONTRIBUTING.md).

``train_dataset`` runs a whole (loss x lr x seed x fold) grid and returns long tables;
``train_stack`` / ``train_naive`` are the stacked engine and its per-model reference.
"""

from bench.train._naive import train_naive
from bench.train._run import RunResult, check_grid, train_dataset
from bench.train._select import best_epochs, best_lrs
from bench.train._stack import StackSpec, train_stack

__all__ = ["RunResult", "StackSpec", "best_epochs", "best_lrs", "check_grid", "train_dataset",
           "train_naive", "train_stack"]
