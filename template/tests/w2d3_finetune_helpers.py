"""Helpers for the w2d3_finetune graders: tiny random `transformers` models, small batches of
fortunes, a reference training loop built only from torch / transformers / accelerate pieces,
and parameter comparisons that explain which parameter differs and by how much."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
from torch import Tensor, nn


@cache
def tokenizer():
    """MiniLM's WordPiece tokenizer, loaded once."""
    from mlab import w2d3_finetune as m

    return m.bert_tokenizer()


def tiny_bert(seed: int = 0, vocab_size: int = 30522):
    """A tiny random `transformers.BertModel` (d 32, 2 layers, 4 heads; MiniLM's vocabulary so
    that MiniLM's tokenizer fits), eval mode, no pooler, no dropout of its own (so any dropout
    seen comes from the classifier's head)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.02,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False).eval()


def padded_ids(lengths: list[int], vocab: int = 101, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A right-padded batch with [CLS]-like id 1 first: ids (b, s) and mask (b, s)."""
    gen = torch.Generator().manual_seed(seed)
    s = max(lengths)
    ids = torch.randint(3, vocab, (len(lengths), s), generator=gen)
    ids[:, 0] = 1
    mask = (torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, 0), mask


def fortune_texts(n: int, split: str = "train") -> list[str]:
    """n fortunes, taken round-robin over the categories."""
    from mlab import w2d3_finetune as m

    data = m.load_fortunes(split)
    per = len(data) // len(m.CATEGORIES)
    order = [c * per + i for i in range(per) for c in range(len(m.CATEGORIES))]
    return [data[j][0] for j in order[:n]]


def state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_same_parameters(
    got: dict[str, Tensor], expected: dict[str, Tensor], *, what: str, atol: float = 1e-6
) -> None:
    """Every tensor of two state dicts equal; the message names the worst parameter."""
    worst, worst_err = None, 0.0
    for name, e in expected.items():
        g = got[name]
        if g.shape != e.shape:
            pytest.fail(f"{what}: {name} has shape {tuple(g.shape)}, expected {tuple(e.shape)}")
        err = (g.double() - e.double()).abs().max().item() if e.numel() else 0.0
        if not math.isfinite(err) or err > worst_err:
            worst, worst_err = name, err
    if worst is not None and (worst_err > atol or not math.isfinite(worst_err)):
        n_bad = sum(
            1
            for name, e in expected.items()
            if e.numel() and (got[name].double() - e.double()).abs().max().item() > atol
        )
        pytest.fail(
            f"{what}: {n_bad} of {len(expected)} parameter tensors differ; the worst is {worst} "
            f"(max abs error {worst_err:.3g}, atol {atol:g}).",
            pytrace=False,
        )


def reference_step(model, batch, loss_fn, optimizer, scheduler, accelerator, max_grad_norm):
    """One training step as the recipe says, from built-ins."""
    model.train()
    optimizer.zero_grad()
    with accelerator.autocast():
        loss = loss_fn(model, batch)
    accelerator.backward(loss)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def reference_train(model, data, collate_fn, loss_fn, config, accelerator) -> list[float]:
    """The training recipe of `train`, built from torch's AdamW, transformers'
    `get_linear_schedule_with_warmup` and the batch order the docs fix."""
    from mlab import w2d3_finetune as m
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            dict(params=[p for p in params if p.ndim >= 2], weight_decay=config.weight_decay),
            dict(params=[p for p in params if p.ndim < 2], weight_decay=0.0),
        ],
        lr=config.lr,
    )
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, config.warmup_steps, config.epochs * steps_per_epoch
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    losses = []
    for epoch in range(config.epochs):
        gen = torch.Generator().manual_seed(1000 * config.seed + epoch)
        for idx in torch.randperm(len(data), generator=gen).split(config.batch_size):
            batch = m.to_device(collate_fn([data[j] for j in idx.tolist()]), accelerator.device)
            losses.append(
                reference_step(
                    model, batch, loss_fn, optimizer, scheduler, accelerator, config.max_grad_norm
                )
            )
    return losses


def curve(losses: list[float], k: int = 4) -> str:
    """A short summary of a loss curve: first, a few in between, last."""
    if not losses:
        return "no steps"
    picks = sorted({0, *range(0, len(losses), max(1, len(losses) // k)), len(losses) - 1})
    return ", ".join(f"step {i + 1}: {losses[i]:.3f}" for i in picks)


class TinyClassifier(nn.Module):
    """A classifier made by the graders (not your BertClassifier): tiny BERT, dropout, head."""

    def __init__(self, seed: int = 0, num_classes: int = 4, dropout: float = 0.5):
        super().__init__()
        self.body = tiny_bert(seed)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(32, num_classes)
        nn.init.normal_(self.head.weight, std=1.0)

    def forward(self, input_ids, attention_mask):
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(hidden[:, 0]))


def peaked_gpt2(seed: int, n_positions: int = 64, dropout: float | None = None):
    """`tiny_gpt2` with larger (tied) token embeddings, so its predictions depend strongly on
    the context (a fresh GPT-2's are near uniform, which would hide a missing shift)."""
    from mlab import w2d3_finetune as m

    model = m.tiny_gpt2(seed=seed, n_positions=n_positions)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        emb = model.transformer.wte.weight
        emb.copy_(0.2 * torch.randn(emb.shape, generator=gen))
    if dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout
    return model


@torch.no_grad()
def reference_perplexity(model, texts: list[str], max_length: int) -> float:
    """exp(total next-token loss / number of predicted tokens), one text at a time (no padding),
    through GPT2LMHeadModel's built-in loss, in eval mode."""
    from mlab import w2d3_finetune as m

    was_training = model.training
    model.eval()
    tok = m.ByteTokenizer()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for text in texts:
        ids = torch.tensor([[tok.eos_token_id, *tok.encode(text), tok.eos_token_id][:max_length]])
        loss = model(input_ids=ids.to(device), labels=ids.to(device)).loss.float().item()
        total, count = total + loss * (ids.shape[1] - 1), count + ids.shape[1] - 1
    model.train(was_training)
    return math.exp(total / count)
