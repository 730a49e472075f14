"""Models for day w2d4_gpt2_interp's graders: a tiny random GPT-2, a randomized attention-only
model, and a hand-built one whose heads attend where we say."""

from __future__ import annotations

import copy

import torch
from mlab import w2d4_gpt2_interp as m
from torch import nn

HOOK_KINDS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def tiny_gpt2() -> nn.Module:
    """A random 3-layer GPT-2 from transformers (vocab 100, width 32), in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=3, n_embd=32, n_head=4, vocab_size=100, n_positions=32)
    cfg.bos_token_id = cfg.eos_token_id = 0  # inside the vocabulary
    torch.manual_seed(1)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # LayerNorms away from their (1, 0) init, so forgetting ln_f shows
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.5, 2.0)
                module.bias.normal_(0, 0.5)
        model(torch.zeros(1, 2, dtype=torch.long), output_hidden_states=True)  # transformers
        # attaches its own output-collecting hooks on the first call: let it, before we count
    return model


def randomized(model: m.AttnOnlyTransformer, seed: int = 2) -> m.AttnOnlyTransformer:
    """A copy with every bias and LayerNorm weight random and large enough to matter."""
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-1] in ("b_Q", "b_K", "b_V", "b_O", "b_U", "b"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif name == "ln_final.w":
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 + 0.5)
    return model


PLANTED = {
    "previous": [(0, 0), (1, 2)],
    "first": [(0, 1)],
    "current": [(0, 2), (1, 0)],
}  # (layer, head) of each kind in `hand_built()`; head (1, 1) attends uniformly


def hand_built(n_ctx: int = 16, sharpness: float = 60.0) -> m.AttnOnlyTransformer:
    """Positions one-hot in the residual stream (W_pos = I, W_E = 0); queries and keys chosen so
    each head attends to one key: the previous token, the first token, or itself. Layer 0 writes
    nothing (W_O = 0), so layer 1 reads the positions too."""
    cfg = m.AttnOnlyConfig(
        d_vocab=8, n_ctx=n_ctx, d_model=n_ctx, n_layers=2, n_heads=3, d_head=n_ctx
    )
    model = m.AttnOnlyTransformer(cfg)
    eye = torch.eye(n_ctx)
    shift = torch.diag(torch.ones(n_ctx - 1), 1)  # key position j -> feature j + 1
    first = torch.zeros(n_ctx, n_ctx)
    first[:, 0] = 1.0  # every query position -> feature 0
    keys_first = torch.zeros(n_ctx, n_ctx)
    keys_first[0, 0] = 1.0  # only key position 0 has feature 0
    qk = {"previous": (eye, shift), "first": (first, keys_first), "current": (eye, eye)}
    zero = torch.zeros(n_ctx, n_ctx)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_pos.copy_(eye)
        model.ln_final.w.fill_(1.0)
        for kind, heads in PLANTED.items():
            for layer, head in heads:
                attn = model.blocks[layer].attn
                attn.W_Q[head] = qk[kind][0] * sharpness
                attn.W_K[head] = qk[kind][1]
        for head in range(3):  # something to copy, for layer 1 only
            model.blocks[1].attn.W_V[head] = eye
            model.blocks[1].attn.W_O[head] = eye
        model.blocks[1].attn.W_Q[1] = zero  # uniform attention
    return model.eval()


def hook_counts(model: nn.Module) -> dict[str, int]:
    """How many hooks of each kind every module holds ('module: kind' -> n), zeros left out.

    transformers attaches forward hooks of its own (to collect outputs), so graders compare these
    counts before and after a call rather than expect none."""
    counts = {
        f"{name or 'model'}: {kind}": len(getattr(module, kind, None) or {})
        for name, module in model.named_modules()
        for kind in HOOK_KINDS
    }
    return {key: n for key, n in counts.items() if n}


def hooks_left(model: nn.Module, before: dict[str, int] | None = None) -> list[str]:
    """Hooks attached anywhere in `model` beyond those counted in `before`."""
    before = before or {}
    return [
        f"{key} (+{n - before.get(key, 0)})"
        for key, n in hook_counts(model).items()
        if n > before.get(key, 0)
    ]
