"""Helpers for the w2d1_bert graders: tiny random `transformers` BERTs with every weight and bias
randomized, padded batches with mixed token types, the intermediate activations of the reference
model (through forward hooks), and the copy of Hugging Face weights into one of your modules by
the names the day fixes (`token_embedding`, `W_Q`, `ln1`, ...), so each grader needs only the
module it grades."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

DATA = Path(__file__).parent / "data" / "w2d1_bert"
TINY_MLM = DATA / "tiny_mlm"

TINY = dict(
    vocab_size=101,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=24,
    type_vocab_size=3,
    layer_norm_eps=1e-12,
)


def hf_config(**overrides):
    from transformers import BertConfig

    return BertConfig(**{**TINY, **overrides}, attn_implementation="eager")


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter random and O(1): LayerNorm gains near 1 and every bias nonzero, so a
    missing bias, LayerNorm or scale shows; weights scaled by 1/sqrt(fan_in)."""
    gen = torch.Generator().manual_seed(seed)

    def normal(p: Tensor, std: float) -> Tensor:
        return torch.randn(p.shape, generator=gen) * std

    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            p.copy_(1 + normal(p, 0.3))
        elif name.endswith("bias"):
            p.copy_(normal(p, 0.3))
        elif "embeddings" in name:
            p.copy_(normal(p, 1.0))
        else:
            p.copy_(normal(p, p.shape[1] ** -0.5))
    return model.eval()


def hf_bert(seed: int = 0, **overrides):
    """A tiny random `transformers.BertModel` (eval mode)."""
    from transformers import BertModel

    return randomize(BertModel(hf_config(**overrides)), seed)


def hf_mlm(seed: int = 0, **overrides):
    """A tiny random `transformers.BertForMaskedLM` (eval mode, decoder tied to embeddings)."""
    from transformers import BertForMaskedLM

    return randomize(BertForMaskedLM(hf_config(**overrides)), seed)


def padded_batch(seed: int = 1, vocab_size: int = 101, lengths=(9, 6, 3, 8), type_vocab_size=3):
    """input_ids, attention_mask (1 real, 0 padding: rows of the given lengths) and token
    types: sentence A then sentence B (and type 2 for a few tokens when there are 3 types)."""
    gen = torch.Generator().manual_seed(seed)
    b, s = len(lengths), max(lengths)
    input_ids = torch.randint(1, vocab_size, (b, s), generator=gen)
    attention_mask = (torch.arange(s)[None] < torch.tensor(lengths)[:, None]).long()
    input_ids = input_ids.masked_fill(attention_mask == 0, 0)  # [PAD] is id 0
    token_type_ids = (torch.arange(s)[None] >= torch.tensor(lengths)[:, None] // 2).long()
    if type_vocab_size > 2:
        token_type_ids[0, -2:] = 2
    return input_ids, attention_mask, token_type_ids


def hf_trace(hf_model, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, Tensor]:
    """The reference's activations: `embeddings`, `layer{i}` (each layer's output), `attn{i}`
    (each layer's attention after its output projection, before the residual and LayerNorm),
    `pattern{i}` (attention probabilities (b, h, q, k)) and `hidden` (last hidden states)."""
    bert = getattr(hf_model, "bert", hf_model)
    acts: dict[str, Tensor] = {}

    def keep(name):
        def hook(module, args, output):
            acts[name] = (output[0] if isinstance(output, tuple) else output).detach()

        return hook

    handles = [bert.embeddings.register_forward_hook(keep("embeddings"))]
    for i, layer in enumerate(bert.encoder.layer):
        handles.append(layer.register_forward_hook(keep(f"layer{i}")))
        handles.append(layer.attention.output.dense.register_forward_hook(keep(f"attn{i}")))
    try:
        with torch.no_grad():
            out = bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_attentions=True,
            )
    finally:
        for handle in handles:
            handle.remove()
    for i, pattern in enumerate(out.attentions):
        acts[f"pattern{i}"] = pattern.detach()
    acts["hidden"] = out.last_hidden_state.detach()
    return acts


# -- your names -> Hugging Face's ---------------------------------------------------------------

HF_NAMES = [  # (your name, Hugging Face's), applied in order to a key of your BertForMaskedLM
    ("embeddings.token_embedding.", "embeddings.word_embeddings."),
    ("embeddings.position_embedding.", "embeddings.position_embeddings."),
    ("embeddings.token_type_embedding.", "embeddings.token_type_embeddings."),
    ("embeddings.ln.", "embeddings.LayerNorm."),
    (".attention.W_Q.", ".attention.self.query."),
    (".attention.W_K.", ".attention.self.key."),
    (".attention.W_V.", ".attention.self.value."),
    (".attention.W_O.", ".attention.output.dense."),
    (".ln1.", ".attention.output.LayerNorm."),
    (".mlp_in.", ".intermediate.dense."),
    (".mlp_out.", ".output.dense."),
    (".ln2.", ".output.LayerNorm."),
    ("encoder.layers.", "encoder.layer."),
]
MLM_HEAD = {
    "transform.weight": "cls.predictions.transform.dense.weight",
    "transform.bias": "cls.predictions.transform.dense.bias",
    "transform_ln.weight": "cls.predictions.transform.LayerNorm.weight",
    "transform_ln.bias": "cls.predictions.transform.LayerNorm.bias",
    "decoder_bias": "cls.predictions.bias",
}


def hf_key(full_key: str) -> str:
    """The Hugging Face key of one of your BertForMaskedLM's keys (`bert.` + BertModel keys)."""
    if full_key in MLM_HEAD:
        return MLM_HEAD[full_key]
    key = "." + full_key
    for ours, theirs in HF_NAMES:
        key = key.replace(ours, theirs)
    return key[1:]


def copy_hf_weights(module: nn.Module, hf_state: dict[str, Tensor], at: str, what: str) -> None:
    """Fill `module` (which sits at path `at` of a BertForMaskedLM, e.g.
    `bert.encoder.layers.0.attention`) from a Hugging Face BertForMaskedLM state dict."""
    own = module.state_dict()
    prefix = f"{at}." if at else ""
    expected = sorted(
        k.removeprefix(prefix) for k in OUR_KEYS if k.startswith(prefix) and hf_key(k) in hf_state
    )
    missing = sorted(set(expected) - own.keys())
    extra = sorted(set(own) - set(expected))
    if missing or extra:
        lines = [f"{what}: your module's parameters are not named as the docs say."]
        if missing:
            lines.append(f"Missing: {', '.join(missing)}.")
        if extra:
            lines.append(f"Unexpected: {', '.join(extra)}.")
        if any("decoder" in k for k in extra):
            lines.append(
                "The decoder is tied: it reuses the word embeddings (no weight of its own)."
            )
        lines.append(f"Expected exactly: {', '.join(expected)}.")
        pytest.fail(" ".join(lines), pytrace=False)
    with torch.no_grad():
        for k in expected:
            source = hf_state[hf_key(prefix + k)]
            if own[k].shape != source.shape:
                pytest.fail(
                    f"{what}: {k} has shape {tuple(own[k].shape)}, the checkpoint's "
                    f"{hf_key(prefix + k)} is {tuple(source.shape)}",
                    pytrace=False,
                )
            own[k].copy_(source)
    module.eval()


def _our_keys() -> list[str]:
    """Every key of a 2-layer BertForMaskedLM as the day names them."""
    keys = [f"bert.embeddings.{n}.weight" for n in ("token_embedding", "position_embedding")]
    keys += ["bert.embeddings.token_type_embedding.weight"]
    keys += ["bert.embeddings.ln.weight", "bert.embeddings.ln.bias"]
    for i in range(8):
        for n in ("attention.W_Q", "attention.W_K", "attention.W_V", "attention.W_O"):
            keys += [f"bert.encoder.layers.{i}.{n}.weight", f"bert.encoder.layers.{i}.{n}.bias"]
        for n in ("ln1", "mlp_in", "mlp_out", "ln2"):
            keys += [f"bert.encoder.layers.{i}.{n}.weight", f"bert.encoder.layers.{i}.{n}.bias"]
    return keys + list(MLM_HEAD)


OUR_KEYS = _our_keys()


def load_into(module: nn.Module, hf_model, at: str, what: str) -> nn.Module:
    """copy_hf_weights from a transformers BertModel or BertForMaskedLM."""
    state = hf_model.state_dict()
    if not any(k.startswith(("bert.", "cls.")) for k in state):  # a BertModel's keys
        state = {f"bert.{k}": v for k, v in state.items()}
    copy_hf_weights(module, state, at, what)
    return module


class HFMaskedLM(nn.Module):
    """transformers' BertForMaskedLM behind the day's calling convention:
    model(input_ids, attention_mask=None, token_type_ids=None) -> logits (b, s, v)."""

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model.eval()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.hf(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits


def tiny_mlm_facts() -> list[dict]:
    return json.loads((TINY_MLM / "facts.json").read_text())


@contextlib.contextmanager
def forbid(*names: str):
    """Within the block, the named torch built-ins (`torch.nn.functional.layer_norm`, ...)
    raise: they are what the graders compare with."""
    import importlib

    with pytest.MonkeyPatch.context() as mp:
        for dotted in names:
            module_name, attr = dotted.rsplit(".", 1)
            module = importlib.import_module(module_name)
            mp.setattr(module, attr, _refuse(dotted))
        yield


def _refuse(name: str):
    def refuse(*args, **kwargs):
        raise AssertionError(
            f"{name} is the reference the graders compare with: write it yourself (see the docs)"
        )

    return refuse
