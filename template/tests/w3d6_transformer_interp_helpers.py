"""Models and data for day w3d6_transformer_interp's graders: the shipped brackets classifier,
clean / corrupted pairs, and small random models in which the metric is linear."""

from __future__ import annotations

import torch
from mlab import w3d6_transformer_interp as m
from torch import nn

HOOK_KINDS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def hooks_left(model: nn.Module) -> list[str]:
    """'module: kind (n)' for every module that still holds hooks."""
    return [
        f"{name or 'model'}: {kind} ({len(getattr(module, kind))})"
        for name, module in model.named_modules()
        for kind in HOOK_KINDS
        if getattr(module, kind, None)
    ]


def pairs(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) tokens, (n, 17) each: balanced strings and one swapped "()" each."""
    clean, corrupted = m.clean_corrupted_pairs(n, 16, torch.Generator().manual_seed(seed))
    return m.tokenize(clean), m.tokenize(corrupted)


def random_model(layer_norm: bool = True, d_mlp: int = 16, seed: int = 3) -> m.BracketTransformer:
    """A random 2-layer, 2-head model (d_model 16) with random biases and LayerNorm weights."""
    torch.manual_seed(seed)
    cfg = m.BracketsConfig(
        d_model=16, n_layers=2, n_heads=2, d_head=8, d_mlp=d_mlp, layer_norm=layer_norm
    )
    model = m.BracketTransformer(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-1] in ("b_Q", "b_K", "b_V", "b_O", "b_in", "b_out", "b", "b_U"):
                p.normal_(0, 0.3)
            elif name.endswith(".w"):
                p.uniform_(0.5, 1.5)
    return model.eval()


def linear_model(seed: int = 4) -> m.BracketTransformer:
    """No LayerNorm, no MLP and W_Q = W_K = 0 (uniform attention): the logits are an affine
    function of every activation, so first-order (attribution) patching is exact."""
    model = random_model(layer_norm=False, d_mlp=0, seed=seed)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_Q.zero_()
            block.attn.W_K.zero_()
    return model


def cache_of(
    model: nn.Module, tokens: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The logits and every hook point's output, recorded by the grader itself."""
    store: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, i, o, n=name: store.__setitem__(n, o.detach()))
        for name, module in model.named_modules()
        if isinstance(module, m.HookPoint)
    ]
    try:
        with torch.no_grad():
            logits = model(tokens)
    finally:
        for h in handles:
            h.remove()
    return logits, store


def diff_of(logits: torch.Tensor) -> float:
    """The grader's own mean logit difference (balanced - unbalanced)."""
    return float((logits[:, 1] - logits[:, 0]).mean())


def interpolate(
    clean: dict[str, torch.Tensor], corrupted: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """A cache alpha of the way from the corrupted to the clean activations."""
    return {k: corrupted[k] + alpha * (clean[k] - corrupted[k]) for k in clean}


def normalized(clean_logits: torch.Tensor, corrupted_logits: torch.Tensor):
    """The grader's own normalized metric: 0 on the corrupted run, 1 on the clean run."""
    c, r = diff_of(clean_logits), diff_of(corrupted_logits)
    return lambda logits: ((logits[:, 1] - logits[:, 0]).mean() - r) / (c - r)


def raw_diff(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, 1] - logits[:, 0]).mean()
