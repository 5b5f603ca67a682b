"""What a loss's ``prepare`` / ``epoch_start`` hooks may ask of the trainer running it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainContext:
    """The trainer's side of the loss hooks (``bench.losses.Loss``).

    ``train_logits()``: float32 logits ``[n_train, C]`` of the current model on the training
    set (eval mode, no grad, training-set order of ``train_targets``), e.g. truncated Lq's
    pruning with ``prune_with="current"``. ``best_train_logits()``: the same for the model
    at the best validation accuracy so far (needs {"best_model"}: the GCE paper's pruning).
    ``reference_probs(loss_id)``: softmax ``[n_train, C]`` on the training set of a
    model trained with ``loss_id`` under the same spec (forward correction's first stage).
    """

    n_train: int
    device: torch.device
    train_targets: torch.Tensor
    train_logits: Callable[[], torch.Tensor]
    reference_probs: Callable[[str], torch.Tensor]
    best_train_logits: Callable[[], torch.Tensor]
