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
        # BEGIN SOLUTION
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        # END SOLUTION

    def forward(self, x: Float[Tensor, "... d"]) -> Float[Tensor, "... d"]:
        # BEGIN SOLUTION
        mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
        # END SOLUTION


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
        # BEGIN SOLUTION
        d = config.hidden_size
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, d)
        self.token_type_embedding = nn.Embedding(config.type_vocab_size, d)
        self.ln = LayerNorm(d, config.layer_norm_eps)
        # END SOLUTION

    def forward(
        self, input_ids: Int[Tensor, "b s"], token_type_ids: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        # BEGIN SOLUTION
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (s,)
        x = (
            self.token_embedding(input_ids)  # (b, s, d)
            + self.position_embedding(positions)  # (s, d), broadcast over b
            + self.token_type_embedding(token_type_ids)  # (b, s, d)
        )
        return self.ln(x)
        # END SOLUTION


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
        # BEGIN SOLUTION
        d = config.hidden_size
        self.num_heads, self.head_size = config.num_attention_heads, config.head_size
        self.W_Q = nn.Linear(d, d)
        self.W_K = nn.Linear(d, d)
        self.W_V = nn.Linear(d, d)
        self.W_O = nn.Linear(d, d)
        # END SOLUTION

    def attention_pattern(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b h q k"]:
        """The attention probabilities: each row (one query) sums to 1 over the keys, and a key
        whose attention_mask is 0 gets probability exactly 0."""
        # BEGIN SOLUTION
        b, s, _ = x.shape
        q = self.W_Q(x).reshape(b, s, self.num_heads, self.head_size).transpose(1, 2)  # (b,h,q,dh)
        k = self.W_K(x).reshape(b, s, self.num_heads, self.head_size).transpose(1, 2)  # (b,h,k,dh)
        scores = q @ k.transpose(-2, -1) / self.head_size**0.5  # (b, h, q, k)
        if attention_mask is not None:
            keep = attention_mask.bool()[:, None, None, :]  # (b, 1, 1, k): mask keys only
            scores = scores.masked_fill(~keep, float("-inf"))
        return scores.softmax(dim=-1)
        # END SOLUTION

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        # BEGIN SOLUTION
        b, s, d = x.shape
        pattern = self.attention_pattern(x, attention_mask)  # (b, h, q, k)
        v = self.W_V(x).reshape(b, s, self.num_heads, self.head_size).transpose(1, 2)  # (b,h,k,dh)
        z = pattern @ v  # (b, h, q, dh)
        z = z.transpose(1, 2).reshape(b, s, d)  # (b, q, h * dh): heads concatenated
        return self.W_O(z)
        # END SOLUTION


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
        # BEGIN SOLUTION
        d, eps = config.hidden_size, config.layer_norm_eps
        self.attention = BertSelfAttention(config)
        self.ln1 = LayerNorm(d, eps)
        self.mlp_in = nn.Linear(d, config.intermediate_size)
        self.mlp_out = nn.Linear(config.intermediate_size, d)
        self.ln2 = LayerNorm(d, eps)
        # END SOLUTION

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        # BEGIN SOLUTION
        x = self.ln1(x + self.attention(x, attention_mask))
        return self.ln2(x + self.mlp_out(F.gelu(self.mlp_in(x))))
        # END SOLUTION


class BertEncoder(nn.Module):
    """num_hidden_layers BertLayers applied in order, every one with the same mask.

    Child: `layers`, an nn.ModuleList (so the keys read `layers.0.attention.W_Q.weight`, ...).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        # BEGIN SOLUTION
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        # END SOLUTION

    def forward(
        self, x: Float[Tensor, "b s d"], attention_mask: Int[Tensor, "b s"] | None = None
    ) -> Float[Tensor, "b s d"]:
        # BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x, attention_mask)
        return x
        # END SOLUTION


class BertModel(nn.Module):
    """The BERT encoder: token ids -> the last layer's hidden states (no pooler).

    Children: `embeddings` BertEmbeddings, `encoder` BertEncoder; `self.config` keeps the
    config. attention_mask (1 for real tokens, 0 for padding) defaults to all ones and
    token_type_ids to zeros.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        # BEGIN SOLUTION
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        # END SOLUTION

    def forward(
        self,
        input_ids: Int[Tensor, "b s"],
        attention_mask: Int[Tensor, "b s"] | None = None,
        token_type_ids: Int[Tensor, "b s"] | None = None,
    ) -> Float[Tensor, "b s d"]:
        # BEGIN SOLUTION
        return self.encoder(self.embeddings(input_ids, token_type_ids), attention_mask)
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.config = config
        self.bert = BertModel(config)
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_ln = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))
        # END SOLUTION

    def forward(
        self,
        input_ids: Int[Tensor, "b s"],
        attention_mask: Int[Tensor, "b s"] | None = None,
        token_type_ids: Int[Tensor, "b s"] | None = None,
    ) -> Float[Tensor, "b s v"]:
        # BEGIN SOLUTION
        hidden = self.bert(input_ids, attention_mask, token_type_ids)  # (b, s, d)
        t = self.transform_ln(F.gelu(self.transform(hidden)))  # (b, s, d)
        return t @ self.bert.embeddings.token_embedding.weight.T + self.decoder_bias  # (b, s, v)
        # END SOLUTION


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
    # BEGIN SOLUTION
    if isinstance(path_or_state_dict, str | Path):
        state_dict, folder_config = read_hf_checkpoint(path_or_state_dict)
        config = BertConfig.from_hf(config) if config is not None else folder_config
    else:
        if config is None:
            raise ValueError("load_pretrained_bert: a state dict needs its config")
        state_dict, config = path_or_state_dict, BertConfig.from_hf(config)

    has_mlm_head = any(k.startswith("cls.predictions.transform.") for k in state_dict)
    model = BertForMaskedLM(config) if has_mlm_head else BertModel(config)
    prefix = "bert." if has_mlm_head else ""
    skipped = ("pooler.", "cls.predictions.decoder.", "cls.seq_relationship.")

    renames = [
        ("embeddings.word_embeddings.", "embeddings.token_embedding."),
        ("embeddings.position_embeddings.", "embeddings.position_embedding."),
        ("embeddings.token_type_embeddings.", "embeddings.token_type_embedding."),
        ("embeddings.LayerNorm.", "embeddings.ln."),
        ("encoder.layer.", "encoder.layers."),
        (".attention.self.query.", ".attention.W_Q."),
        (".attention.self.key.", ".attention.W_K."),
        (".attention.self.value.", ".attention.W_V."),
        (".attention.output.dense.", ".attention.W_O."),
        (".attention.output.LayerNorm.", ".ln1."),
        (".intermediate.dense.", ".mlp_in."),
        (".output.dense.", ".mlp_out."),
        (".output.LayerNorm.", ".ln2."),
        ("cls.predictions.transform.dense.", "transform."),
        ("cls.predictions.transform.LayerNorm.", "transform_ln."),
        ("cls.predictions.bias", "decoder_bias"),
    ]

    def ours(key: str) -> str | None:
        key = key.removeprefix("bert.")
        if key.endswith("position_ids") or key.startswith(skipped):
            return None
        mine = prefix + key if not key.startswith("cls.") else key
        for old, new in renames:
            mine = mine.replace(old, new)
        return mine

    own = model.state_dict()
    problems, filled = [], set()
    for key, value in state_dict.items():
        mine = ours(key)
        if mine is None:
            continue
        if mine not in own:
            problems.append(f"cannot map {key}")
        elif own[mine].shape != value.shape:
            problems.append(
                f"{key}: shape {tuple(value.shape)}, {mine} is {tuple(own[mine].shape)}"
            )
        else:
            filled.add(mine)
    problems += [f"nothing fills {k}" for k in own if k not in filled]
    if problems:
        raise ValueError("load_pretrained_bert: " + "; ".join(problems))
    with torch.no_grad():
        for key, value in state_dict.items():
            mine = ours(key)
            if mine is not None:
                own[mine].copy_(value)
    return model.eval()
    # END SOLUTION


def predict_masked(model: nn.Module, tokenizer: Any, text: str, k: int = 5) -> list[list[str]]:
    """The k most likely tokens for each [MASK] in `text`, best first, one list per mask in
    order of appearance.

    `tokenizer` is a Hugging Face tokenizer (`tokenizer(text, return_tensors="pt")` gives
    `input_ids` (1, s) with [CLS] ... [SEP]; `tokenizer.mask_token_id`,
    `tokenizer.convert_ids_to_tokens`); `model(input_ids, attention_mask)` returns logits
    (1, s, v). No gradients are needed.
    """
    # BEGIN SOLUTION
    encoded = tokenizer(text, return_tensors="pt")
    input_ids = encoded["input_ids"]  # (1, s)
    with torch.no_grad():
        logits = model(input_ids, attention_mask=encoded["attention_mask"])  # (1, s, v)
    positions = (input_ids[0] == tokenizer.mask_token_id).nonzero().squeeze(-1)  # (n_masks,)
    top = logits[0, positions].topk(k, dim=-1).indices  # (n_masks, k)
    return [tokenizer.convert_ids_to_tokens(row.tolist()) for row in top]
    # END SOLUTION
