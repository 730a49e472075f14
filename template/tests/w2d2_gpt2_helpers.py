"""Helpers for the w2d2_gpt2 graders: tiny random Hugging Face GPT-2s, copying their weights into
the pair's modules, a chi-square check for samplers, and the reference tokenizer."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
from mlab import w2d2_gpt2 as m
from scipy.stats import chisquare
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()  # no advice about attention masks and pad tokens in the output

# Hugging Face's Conv1D keeps (in, out) weights, nn.Linear (out, in).
CONV1D = ("c_attn.weight", "c_proj.weight", "c_fc.weight")


def hf_gpt2(
    *,
    vocab_size: int = 97,
    n_embd: int = 32,
    n_head: int = 4,
    n_layer: int = 2,
    n_positions: int = 64,
    seed: int = 0,
    init: float = 0.2,
) -> GPT2LMHeadModel:
    """A tiny random GPT2LMHeadModel in eval mode. Weights are drawn wider than GPT-2's default
    (std 0.02) so that logits vary a lot between tokens: no near-ties for greedy or beams."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=n_embd,
        n_head=n_head,
        n_layer=n_layer,
        n_positions=n_positions,
        initializer_range=init,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = None  # never stop early: fixed-length outputs
    model.generation_config.pad_token_id = 0
    return model


def _mask_buffer(key: str) -> bool:
    """Old checkpoints keep the causal mask as `attn.bias` / `attn.masked_bias` buffers."""
    parts = ["attn", *key.split(".")]
    return parts[-1] in ("bias", "masked_bias") and parts[-2] == "attn"


def linear_state(hf_module: nn.Module) -> dict[str, torch.Tensor]:
    """A Hugging Face submodule's state dict in nn.Linear layout."""
    return {
        k: v.T if k.endswith(CONV1D) else v
        for k, v in hf_module.state_dict().items()
        if not _mask_buffer(k)
    }


def copy_into(ours: nn.Module, hf_module: nn.Module, what: str) -> None:
    """Load a Hugging Face submodule's weights into the pair's module of the same structure."""
    state = linear_state(hf_module)
    missing, unexpected = ours.load_state_dict(state, strict=False)
    if missing or unexpected:
        pytest.fail(
            f"{what}: the module's parameter names changed (missing {sorted(missing)}, unexpected "
            f"{sorted(unexpected)}); keep the names the given __init__ sets up",
            pytrace=False,
        )


def our_model(hf: GPT2LMHeadModel) -> m.GPT2:
    """The pair's GPT2 with hf's weights, copied by the graders (not by load_gpt2_weights)."""
    ours = m.GPT2(m.GPT2Config.from_hf(hf.config))
    copy_into(ours, hf.transformer, "GPT2")
    return ours.eval()


def prompts(vocab_size: int, b: int = 3, t: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab_size, (b, t), generator=torch.Generator().manual_seed(seed))


def hf_generate(hf: GPT2LMHeadModel, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return hf.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False, **kwargs
        )


def capture_call(module: nn.Module, run) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden_states a submodule received and its first output while `run()` ran."""
    seen = {}

    def pre(mod, args, kwargs):
        seen["input"] = args[0] if args else kwargs["hidden_states"]

    def post(mod, args, kwargs, output):
        seen["output"] = output[0] if isinstance(output, tuple) else output

    handles = [
        module.register_forward_pre_hook(pre, with_kwargs=True),
        module.register_forward_hook(post, with_kwargs=True),
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return seen["input"].detach().clone(), seen["output"].detach().clone()


def assert_samples_follow(
    samples, probs: torch.Tensor, *, what: str, min_pvalue: float = 1e-3
) -> None:
    """Chi-square goodness of fit of integer samples to a categorical distribution `probs`."""
    if not isinstance(samples, torch.Tensor) or samples.dtype not in (torch.int64, torch.int32):
        pytest.fail(f"{what}: expected an integer tensor of token ids", pytrace=False)
    samples = samples.flatten().long()
    n, vocab = samples.numel(), probs.numel()
    if samples.min() < 0 or samples.max() >= vocab:
        pytest.fail(f"{what}: token ids outside 0..{vocab - 1}", pytrace=False)
    observed = torch.bincount(samples, minlength=vocab).double()
    expected = probs.double() * n
    impossible = (expected == 0) & (observed > 0)
    if impossible.any():
        tokens = impossible.nonzero().flatten().tolist()[:5]
        pytest.fail(
            f"{what}: sampled tokens {tokens} ({int(observed[impossible].sum())} of {n} samples), "
            "which have probability 0 (filtered out or masked)",
            pytrace=False,
        )
    support = expected > 0
    f_exp = expected[support] * (n / expected[support].sum())  # sums must agree exactly
    result = chisquare(observed[support].numpy(), f_exp.numpy())
    if result.pvalue < min_pvalue:
        worst = ((observed - expected).abs() / expected.clamp(min=1e-9).sqrt()).argsort(
            descending=True
        )[:3]
        detail = ", ".join(
            f"token {int(i)}: {int(observed[i])} seen, {expected[i]:.0f} expected" for i in worst
        )
        pytest.fail(
            f"{what}: {n} samples do not follow the expected distribution (chi-square p = "
            f"{result.pvalue:.2g} < {min_pvalue:g}). Largest deviations: {detail}.",
            pytrace=False,
        )


def reference_tokenizer(tmp_path: Path):
    """transformers' GPT2Tokenizer built from the same shipped files."""
    vocab, merges = m.bpe_files()
    shutil.copyfile(vocab, tmp_path / "vocab.json")
    shutil.copyfile(merges, tmp_path / "merges.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import GPT2Tokenizer

        return GPT2Tokenizer.from_pretrained(str(tmp_path))
