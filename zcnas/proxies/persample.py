"""Gradients of single samples and of half batches, for the passes of `passes.py`.

Two ways of getting one gradient per sample, each with a vectorised path (`torch.func`
vmap) and a loop path (one backward per sample, as the references do); the tests hold the
two to each other:

- `per_sample_loss_gradients`: every sample forwarded alone (a batch of 1, so train-mode
  BatchNorm normalises over its spatial positions only) and its cross-entropy
  differentiated (GradSign).
- `logit_sum_gradients`: one forward of the whole batch (BatchNorm statistics over the
  batch), then the gradient of each sample's sum of logits through that forward (TE-NAS's
  NTK rows; `ntk.py`). The two are different quantities, not two speeds of one: with batch
  statistics a sample's logits depend on the other samples.

`tests/perf/bench_persample.py` times the two paths of each. On CPU (one thread, NB201
C=16, N=5, 32x32, batch 64, 3 architectures, best of 2, after a warm-up: torch.func's first
vmap in a process costs seconds) vmap made GradSign's per-sample gradients 1.38-1.47x
faster than the loop, so it is the default; batching the NTK's 16 backwards was 0.88-0.95x
the loop's speed, so the NTK keeps the loop on CPU (`batched_backward_by_default`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap


def batched_backward_by_default(device: torch.device | str) -> bool:
    """The NTK rows' path: one batched backward on accelerators, TE-NAS's loop on CPU.

    On CPU batching the N backwards does not pay: with tests/perf/bench_persample.py (one
    thread, NB201 C=16, N=5, 32x32, 16 rows, 3 architectures, best of 2) loop time over
    batched time was 0.88-0.95x. On a GPU the loop's N small backwards are what batching
    removes (not measured here).
    """
    return torch.device(device).type != "cpu"


def per_sample_loss_gradients(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    *,
    vectorised: bool = True,
    chunk_size: int | None = None,
    attention_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """name -> (N, *shape): ∂CE(net(x_i), y_i)/∂θ for each sample i forwarded alone.

    `net` is a private train-mode copy that this may change (its BatchNorms stop tracking
    running statistics on the vectorised path, which changes no output in train mode);
    `names` are the parameters to differentiate (others are held constant). A parameter the
    loss does not reach gets zeros. `vectorised=False` is the reference loop (GradSign's):
    one forward/backward per sample. `attention_mask` (token networks): each sample's mask
    goes with it, as `net(ids, mask)`; dropout draws a mask per sample (vmap randomness
    "different"), from the global RNG.
    """
    net.train()
    if not vectorised:
        return _per_sample_loss_gradients_loop(net, x, y, names, attention_mask)
    # vmap cannot update BN running statistics in place; without them a train-mode BN
    # still normalises each sample over its own spatial positions, as a batch of 1 does.
    replace_all_batch_norm_modules_(net)
    params = dict(net.named_parameters())
    wanted = {name: params[name].detach() for name in names}
    constants = {name: p.detach() for name, p in params.items() if name not in wanted}
    constants.update(dict(net.named_buffers()))

    def loss_of(weights, sample, label, *mask):
        inputs = (sample.unsqueeze(0), *(m.unsqueeze(0) for m in mask))
        logits = functional_call(net, {**constants, **weights}, inputs)
        return F.cross_entropy(logits, label.unsqueeze(0))

    masks = () if attention_mask is None else (attention_mask,)
    in_dims = (None, 0, 0) + (0,) * len(masks)
    per_sample = vmap(grad(loss_of), in_dims=in_dims, chunk_size=chunk_size, randomness="different")
    grads = per_sample(wanted, x, y, *masks)
    return {name: g.detach() for name, g in grads.items()}


def _forward(net: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None, rows: slice) -> torch.Tensor:
    """`net` on rows of the batch, with their attention mask for a token network."""
    return net(x[rows]) if attention_mask is None else net(x[rows], attention_mask[rows])


def _per_sample_loss_gradients_loop(net, x, y, names, attention_mask=None) -> dict[str, torch.Tensor]:
    params = dict(net.named_parameters())
    weights = [params[name] for name in names]
    rows: list[list[torch.Tensor]] = [[] for _ in names]
    for i in range(x.shape[0]):
        loss = F.cross_entropy(_forward(net, x, attention_mask, slice(i, i + 1)), y[i : i + 1])
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        for row, g, w in zip(rows, grads, weights):
            row.append(g.detach() if g is not None else torch.zeros_like(w))
    return {name: torch.stack(row) for name, row in zip(names, rows)}


def logit_sum_gradients(
    net: nn.Module,
    x: torch.Tensor,
    names: list[str],
    *,
    vectorised: bool | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """G (N × P): row i is ∂(Σ_c f(x)_ic)/∂θ through one train-mode forward of the batch.

    θ is the parameters in `names`, flattened and concatenated in that order; a parameter
    the logits do not reach contributes zeros (TE-NAS skips it: the same kernel G Gᵀ).
    The vectorised path backpropagates the N one-hot cotangents at once
    (`autograd.grad(..., is_grads_batched=True)`, vmap over the backward); the loop path
    runs N backwards through the retained graph, as TE-NAS does. `vectorised=None` picks
    `batched_backward_by_default`.
    """
    if vectorised is None:
        vectorised = batched_backward_by_default(x.device)
    net.train()
    params = dict(net.named_parameters())
    weights = [params[name] for name in names]
    logits = _forward(net, x, attention_mask, slice(None))
    n = logits.shape[0]
    if vectorised:
        cotangents = torch.eye(n, dtype=logits.dtype, device=logits.device)[:, :, None]
        cotangents = cotangents.expand(n, *logits.shape).contiguous()
        grads = torch.autograd.grad(logits, weights, cotangents, is_grads_batched=True, allow_unused=True)
        columns = [
            (g.reshape(n, -1) if g is not None else w.new_zeros((n, w.numel()))) for g, w in zip(grads, weights)
        ]
        return torch.cat(columns, dim=1).detach()
    rows = []
    for i in range(n):
        grads = torch.autograd.grad(logits[i].sum(), weights, retain_graph=i < n - 1, allow_unused=True)
        flat = [(g if g is not None else torch.zeros_like(w)).reshape(-1) for g, w in zip(grads, weights)]
        rows.append(torch.cat(flat))
    return torch.stack(rows).detach()


def half_batch_loss_gradients(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], attention_mask: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """name -> (2, *shape): ∂CE/∂θ of the first and of the second half of the batch, each
    forwarded on its own in train mode (BN statistics per half) with fresh gradients.

    With an odd batch the second half has the extra sample (the split of MeCo's port).
    """
    net.train()
    params = dict(net.named_parameters())
    weights = [params[name] for name in names]
    n = x.shape[0]
    rows: list[list[torch.Tensor]] = [[] for _ in names]
    for start, stop in ((0, n // 2), (n // 2, n)):
        loss = F.cross_entropy(_forward(net, x, attention_mask, slice(start, stop)), y[start:stop])
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        for row, g, w in zip(rows, grads, weights):
            row.append(g.detach() if g is not None else torch.zeros_like(w))
    return {name: torch.stack(row) for name, row in zip(names, rows)}
