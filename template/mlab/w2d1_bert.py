"""Day w2d1_bert: BERT from scratch, loaded with real pretrained weights.

You build BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for
Language Understanding") out of `nn.Linear`, `nn.Embedding` and your own `LayerNorm`: the
embeddings (word + position + token type), multi-head self-attention with a padding mask, the
post-LN transformer layer of "Attention Is All You Need" (Vaswani et al. 2017) with an erf GELU,
the encoder stack, and the masked-language-model head whose decoder shares its weights with the
word embeddings. Then you map Hugging Face's checkpoint keys onto your modules, load the real
all-MiniLM-L6-v2 encoder, and ask a tiny masked LM to fill in blanks. Read docs/w2d1_bert.md.

Shapes: b batch, s sequence (query positions q, key positions k), d hidden size, h heads,
dh = d / h head size, v vocabulary. No dropout anywhere: these models only run in inference.
Allowed: `nn.Linear`, `nn.Embedding`, `nn.ModuleList`, tensor operations, `F.gelu`. Not allowed:
`nn.LayerNorm` / `F.layer_norm` (you write it), `nn.MultiheadAttention`,
`F.scaled_dot_product_attention` and anything from `transformers` in the exercises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

# -- given: the configuration and the checkpoint reader ----------------------------------------


@dataclass
class BertConfig:
    """The hyperparameters of a BERT model, named as in Hugging Face's `config.json`."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act != "gelu":
            raise ValueError(f"only the erf GELU is supported, not hidden_act={self.hidden_act!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, config: Any) -> BertConfig:
        """From a `transformers.BertConfig`, a dict, or the path of a `config.json` (or of the
        folder holding it); keys this class does not know are ignored."""
        if isinstance(config, BertConfig):
            return config
        if isinstance(config, str | Path):
            path = Path(config)
            config = json.loads((path / "config.json" if path.is_dir() else path).read_text())
        if not isinstance(config, dict):
            config = config.to_dict()
        return cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})


def read_hf_checkpoint(folder: str | Path) -> tuple[dict[str, Tensor], BertConfig]:
    """The state dict and config of a Hugging Face checkpoint folder (`config.json` plus
    `model.safetensors` or `pytorch_model.bin`), as plain CPU tensors."""
    folder = Path(folder)
    config = BertConfig.from_hf(folder / "config.json")
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        state_dict = load_file(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").exists():
        state_dict = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{folder}: neither model.safetensors nor pytorch_model.bin")
    return state_dict, config


# -- the building blocks -------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """Layer normalization over the last axis (Ba et al. 2016), like nn.LayerNorm(d, eps):

        y = (x - mean) / sqrt(var + eps) * weight + bias

    with mean and the *biased* variance (divide by d) over the last axis of each position.
    Parameters `weight` (ones) and `bias` (zeros), shape (d,).
    """

    def __init__(self, d: int, eps: float = 1e-12):
        super().__init__()
        raise NotImplementedError("LayerNorm.__init__: see docs/w2d1_bert.md#layernorm")

    def forward(self, x: Float[Tensor, "... d"]) -> Float[Tensor, "... d"]:
        raise NotImplementedError("LayerNorm.forward: see docs/w2d1_bert.md#layernorm")


class BertEmbeddings(nn.Module):
    """The input of the encoder: the sum of three learned embeddings, then a LayerNorm.

        x[b, i] = token_embedding[input_ids[b, i]] + position_embedding[i]
                  + token_type_embedding[token_type_ids[b, i]]
        out = ln(x)

    Children: `token_embedding` nn.Embedding(vocab_size, d), `position_embedding`
    nn.Embedding(max_position_embeddings, d), `token_type_embedding`
    nn.Embedding(type_vocab_size, d), `ln` LayerNorm(d, layer_norm_eps). Positions are
    0, 1, ..., s - 1; token_type_ids default to zeros (every token in sentence A).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertEmbeddings.__init__: see docs/w2d1_bert.md#bertembeddings")

    def forward(
        self, input_ids: Int[Tensor, "b s"], token_type_ids: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        raise NotImplementedError("BertEmbeddings.forward: see docs/w2d1_bert.md#bertembeddings")


class BertSelfAttention(nn.Module):
    """Multi-head self-attention with a padding mask, including the output projection W_O.

    For each head: A = softmax(Q K^T / sqrt(dh)) over the keys, z = A V; the heads' z are
    concatenated back to (b, s, d) and projected by W_O. Padded keys (attention_mask 0) get
    -inf before the softmax, so no query attends to them; padded *queries* are computed like
    any other position (their rows are never masked).

    Children: `W_Q`, `W_K`, `W_V`, `W_O`, each nn.Linear(d, d) with bias.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertSelfAttention.__init__: see docs/w2d1_bert.md#bertselfattention")

    def attention_pattern(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b h q k"]:
        """The attention probabilities: each row (one query) sums to 1 over the keys, and a key
        whose attention_mask is 0 gets probability exactly 0."""
        raise NotImplementedError("BertSelfAttention.attention_pattern: see docs/w2d1_bert.md#bertselfattention")

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        raise NotImplementedError("BertSelfAttention.forward: see docs/w2d1_bert.md#bertselfattention")


class BertLayer(nn.Module):
    """One post-LN transformer layer: each sublayer's output is added to its input, *then*
    normalized (BERT and the original transformer; GPT-2 normalizes before instead).

        x = ln1(x + attention(x, attention_mask))
        x = ln2(x + mlp_out(gelu(mlp_in(x))))

    with the exact (erf) GELU, gelu(u) = u * Phi(u) (F.gelu's default; not the tanh
    approximation). Children: `attention` BertSelfAttention, `ln1` LayerNorm, `mlp_in`
    nn.Linear(d, intermediate_size), `mlp_out` nn.Linear(intermediate_size, d), `ln2` LayerNorm.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertLayer.__init__: see docs/w2d1_bert.md#bertlayer")

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        raise NotImplementedError("BertLayer.forward: see docs/w2d1_bert.md#bertlayer")


class BertEncoder(nn.Module):
    """num_hidden_layers BertLayers applied in order, every one with the same mask.

    Child: `layers`, an nn.ModuleList (so the keys read `layers.0.attention.W_Q.weight`, ...).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertEncoder.__init__: see docs/w2d1_bert.md#bertencoder")

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        raise NotImplementedError("BertEncoder.forward: see docs/w2d1_bert.md#bertencoder")


class BertModel(nn.Module):
    """The BERT encoder: token ids -> the last layer's hidden states (no pooler).

    Children: `embeddings` BertEmbeddings, `encoder` BertEncoder; `self.config` keeps the
    config. attention_mask (1 for real tokens, 0 for padding) defaults to all ones and
    token_type_ids to zeros.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertModel.__init__: see docs/w2d1_bert.md#bertmodel")

    def forward(
        self,
        input_ids: Int[Tensor, "b s"],
        attention_mask: Int[Tensor, "b s"] | None = None,
        token_type_ids: Int[Tensor, "b s"] | None = None,
    ) -> Float[Tensor, "b s d"]:
        raise NotImplementedError("BertModel.forward: see docs/w2d1_bert.md#bertmodel")


class BertForMaskedLM(nn.Module):
    """BERT with its masked-language-model head: a score for every vocabulary word at every
    position.

        t = transform_ln(gelu(transform(hidden)))          (b, s, d)
        logits = t @ token_embedding.weight^T + decoder_bias   (b, s, v)

    The decoder is *tied* to the word embeddings: it reuses `bert.embeddings.token_embedding
    .weight` (no parameter of its own) and adds its own bias. Children: `bert` BertModel,
    `transform` nn.Linear(d, d), `transform_ln` LayerNorm; parameter `decoder_bias` (v,), zeros.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        raise NotImplementedError("BertForMaskedLM.__init__: see docs/w2d1_bert.md#bertformaskedlm")

    def forward(
        self,
        input_ids: Int[Tensor, "b s"],
        attention_mask: Int[Tensor, "b s"] | None = None,
        token_type_ids: Int[Tensor, "b s"] | None = None,
    ) -> Float[Tensor, "b s v"]:
        raise NotImplementedError("BertForMaskedLM.forward: see docs/w2d1_bert.md#bertformaskedlm")


# -- real weights ---------------------------------------------------------------------------------


def load_pretrained_bert(
    path_or_state_dict: str | Path | dict[str, Tensor], config: Any = None
) -> BertModel | BertForMaskedLM:
    """Your model, in eval mode, holding the weights of a Hugging Face BERT checkpoint.

    `path_or_state_dict` is a checkpoint folder (read it with `read_hf_checkpoint`) or a state
    dict of `transformers.BertModel` (keys `embeddings.word_embeddings.weight`, ...) or of
    `BertForMaskedLM` (the same behind `bert.`, plus the head `cls.predictions.*`); `config`
    (anything `BertConfig.from_hf` takes) is needed with a state dict and overrides the
    folder's. Return a BertForMaskedLM when the MLM head is in the checkpoint, else a BertModel.

    Map every Hugging Face key to yours (the table is in the docs). Keys with no counterpart are
    skipped: `pooler.*`, `*.position_ids`, the tied `cls.predictions.decoder.*` and the
    next-sentence head `cls.seq_relationship.*`. Any other key you cannot map, any parameter of
    yours left unfilled and any shape mismatch: raise a ValueError that lists them all.
    """
    raise NotImplementedError("load_pretrained_bert: see docs/w2d1_bert.md#load_pretrained_bert")


def predict_masked(model: nn.Module, tokenizer: Any, text: str, k: int = 5) -> list[list[str]]:
    """The k most likely tokens for each [MASK] in `text`, best first, one list per mask in
    order of appearance.

    `tokenizer` is a Hugging Face tokenizer (`tokenizer(text, return_tensors="pt")` gives
    `input_ids` (1, s) with [CLS] ... [SEP]; `tokenizer.mask_token_id`,
    `tokenizer.convert_ids_to_tokens`); `model(input_ids, attention_mask)` returns logits
    (1, s, v). No gradients are needed.
    """
    raise NotImplementedError("predict_masked: see docs/w2d1_bert.md#predict_masked")
