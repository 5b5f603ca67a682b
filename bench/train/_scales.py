"""Per-model loss scales in the stack: losses that need ``{"scale_params", "weight_norm"}``.

The two-scale losses (``bench/losses/_two_scale.py``) train CE on c X̂ = c z / R, with R the
model's size (eq. 9: the product over layers of the Euclidean norm of each layer's
parameters) and c a scale of their own (R1, R2, R_s: some trainable). The torch trainer
gives each model these as ``loss.parameters()`` in its optimiser and R with its graph. The
stack does the same for all its models at once, on its own layout:

* R per model from the flat parameters (``norms``), each step before the forward, as
  ``step_inputs`` reads it from the model;
* the scales as one more stack parameter ``[S, M, K]`` (K = the most scales a slot has), in
  the flat buffer: the optimiser step, the divergence freeze and the kept epochs cover them
  like any weight; its lr is the model's where the scale is trainable, 0 elsewhere (constants
  stay put, other slots' entries stay unused);
* per step, the loss's ``value_and_grads`` (per-sample values and derivatives w.r.t. the
  logits, each trainable scale and R) give the logit gradient, the scales' gradients (batch
  means) and dL/dR, one call per run of consecutive slots that ``loss.stack_slots`` merges
  (an η sweep of one variant: each call costs its ~40 ops' dispatch, whatever its size);
* the model's gradient gets dL/dR · dR/dθ = dL/dR · R / |θ_i|² · θ_i for each layer i (its
  bias too where R counts biases) when the loss differentiates through R (``r_grad``, as
  ``step_inputs`` passes R with or without its graph);
* at evaluation the logits go through the loss's ``eval_logits(logits, scales, R)`` (Sec. 3.2:
  the test-time scale R1, or R for ``two_scale_sep``), with each kept epoch's own scales and R.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class StackScales:
    """Scale slots of a stack: their scale names, R's bias rule, gradients and rescaling."""

    def __init__(self, losses: Sequence, S: int, L: int, R: int, O: int, mlp: bool) -> None:
        self.losses = list(losses)
        self.S, self.L, self.R, self.M, self.O, self.mlp = S, L, R, L * R, O, mlp
        self.slots = [li for li, loss in enumerate(losses) if "scale_params" in loss.needs]
        # R with or without biases (eq. 9 reading), per model m = l * R + r
        with_bias = [bool(getattr(loss, "r_biases", True)) for loss in losses]
        self.bias = torch.tensor(with_bias, dtype=torch.float32).repeat_interleave(R)  # [M]
        self.bias1 = self.bias.repeat_interleave(O)  # [M * O]: the first layer's columns
        self.r_grad = {li: bool(getattr(losses[li], "r_grad", True)) for li in self.slots}
        self.names: dict[int, list[str]] = {}  # slot -> scale names, column k of the param
        self.runs = self._runs()  # (start, stop, loss, index of its slots) per loss call
        self.dL_dR = torch.zeros(S, L, R)  # this step's batch-mean dL/dR per model
        self._buf: torch.Tensor | None = None  # W1's squares (norms of the current weights)

    @staticmethod
    def wanted(losses: Sequence) -> bool:
        return any("scale_params" in loss.needs for loss in losses)

    def _runs(self) -> list[tuple[int, int, object, int | slice]]:
        """Maximal runs of consecutive scale slots one loss covers (``stack_slots``)."""
        out, slots, a = [], set(self.slots), 0
        while a < self.L:
            if a not in slots:
                a += 1
                continue
            z, loss = a + 1, self.losses[a]
            while z in slots:
                merged = self.losses[a].stack_slots(self.losses[a:z + 1])
                if merged is None:
                    break
                z, loss = z + 1, merged
            out.append((a, z, loss, slice(a, z) if z - a > 1 else a))
            a = z
        return out

    # -- R, eq. 9 ----------------------------------------------------------------------------
    def norms(self, params: Sequence[torch.Tensor], dead: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(R ``[..., S, L, R]``, squared layer norms ``[..., S, M]`` each) of the stack's
        ``[W1, b1(, W2, b2)]`` (with any leading dims, e.g. kept epochs). ``dead``
        ``[S, M]``: models frozen at zero, given R = |θ_i| = 1 (their loss stays finite)."""
        W1, b1 = params[0], params[1]
        lead = W1.shape[:-3]  # the dims before S
        if lead:
            W1sq = W1.square()
        else:  # each step: squares into a buffer allocated once (no page faults per step)
            if self._buf is None:
                self._buf = torch.empty_like(W1)
            W1sq = torch.square(W1, out=self._buf)
        sq1 = W1sq.sum(-2).addcmul_(b1.square().sum(-2), self.bias1)  # [..., S, M*O]
        sqs = [sq1.view(*lead, self.S, self.M, self.O).sum(-1)]
        if self.mlp:
            W2, b2 = params[2], params[3]  # [..., S, M, O, C], [..., S, M, 1, C]
            sqs.append(W2.square().sum((-2, -1)).addcmul_(b2.square().sum((-2, -1)),
                                                          self.bias))
        if dead is not None:
            sqs = [torch.where(dead, 1.0, sq) for sq in sqs]
        R = sqs[0].sqrt()
        for sq in sqs[1:]:
            R = R * sq.sqrt()
        return R.view(*lead, self.S, self.L, self.R), sqs

    # -- the scale parameter -----------------------------------------------------------------
    def initial(self, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The scale parameter ``[S, M, K]`` from R(α⁰) (``loss.init_scales``) and which
        entries are trainable ``[M, K]`` (float 0/1: the lr mask)."""
        R0, _ = self.norms(params)  # [S, L, R]
        inits = {li: self.losses[li].init_scales(R0[:, li]) for li in self.slots}
        self.names = {li: list(init) for li, init in inits.items()}
        K = max(len(names) for names in self.names.values())
        value = torch.ones(self.S, self.L, self.R, K)
        trainable = torch.zeros(self.L, self.R, K)
        for li, init in inits.items():
            for k, t in enumerate(init.values()):
                value[:, li, :, k] = t.detach().to(torch.float32)
                trainable[li, :, k] = float(t.requires_grad)
        return value.view(self.S, self.M, K), trainable.view(self.M, K)

    def _scales(self, scale: torch.Tensor, li: int, at) -> dict[str, torch.Tensor]:
        """Slot ``li``'s scales as the loss takes them: ``[..., S, (Lg,) R, 1]`` views of the
        scale parameter viewed ``[..., S, L, R, K]``, ``at`` the slot (or a group's slice)."""
        return {name: scale[..., at, :, k, None] for k, name in enumerate(self.names[li])}

    # -- training ----------------------------------------------------------------------------
    def loss_grad(self, loss, li: int, at, logits: torch.Tensor, target: torch.Tensor,
                  progress: float, scale: torch.Tensor, grad_scale: torch.Tensor,
                  R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample values and d(sum)/d(logits) of slot ``li`` (``at``: it, or its group's
        slice); writes the scales' batch-mean gradients into ``grad_scale`` and dL/dR into
        ``dL_dR`` (both viewed ``[S, L, R, K]`` / ``[S, L, R]``)."""
        inputs = {"scales": self._scales(scale, li, at), "weight_norm": R[:, at, :, None]}
        values, grads = loss.value_and_grads(logits, target, progress, **inputs)
        for k, name in enumerate(self.names[li]):
            if name in grads:
                grad_scale[:, at, :, k] = grads[name].mean(-1)
        if self.r_grad[li]:
            self.dL_dR[:, at] = grads["weight_norm"].mean(-1)
        return values, grads["logits"]

    def add_r_grads(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                    R: torch.Tensor, sqs: Sequence[torch.Tensor]) -> None:
        """Add dL/dR · dR/dθ to each layer's gradient: dR/dθ_i = R / |θ_i|² · θ_i (bias
        included where R counts it)."""
        S, M, O = self.S, self.M, self.O
        dR = self.dL_dR.view(S, M) * R.view(S, M)
        c1 = (dR / sqs[0])[:, None, :, None].expand(S, 1, M, O).reshape(S, 1, M * O)
        grads[0].addcmul_(params[0], c1)
        grads[1].addcmul_(params[1], c1 * self.bias1)
        if self.mlp:
            c2 = (dR / sqs[1])[:, :, None, None]  # [S, M, 1, 1]
            grads[2].addcmul_(params[2], c2)
            grads[3].addcmul_(params[3], c2 * self.bias[:, None, None])

    # -- evaluation --------------------------------------------------------------------------
    def rescale(self, logits: torch.Tensor, scale: torch.Tensor, R: torch.Tensor,
                batch_major: bool) -> None:
        """The test-time logits in place: each scale slot's ``eval_logits(logits, scales, R)``.
        ``logits`` ``[K, S, M, b, C]`` (``batch_major``: ``[K, S, b, M, C]``), ``scale``
        ``[K, S, L, R, K']`` and ``R`` ``[K, S, L, R]`` of the same K kept epochs."""
        K, S, L, Rn = R.shape
        if batch_major:
            by_slot = logits.view(K, S, logits.shape[2], L, Rn, -1).movedim(2, 4)
        else:
            by_slot = logits.view(K, S, L, Rn, *logits.shape[3:])
        for li in self.slots:  # [K, S, R, b, C] each
            view = by_slot[:, :, li]
            view.copy_(self.losses[li].eval_logits(view, self._scales(scale, li, li),
                                                   R[:, :, li, :, None]))
