"""Train day w2d1_bert's tiny masked language model on templated facts and save it.

Run `python solutions/mlab/w2d1_bert_assets/train_tiny_mlm.py` from the repo root (about 20 s of
CPU time on one core). It builds a word-level vocabulary from the facts below, trains a 2-layer
`transformers.BertForMaskedLM` (hidden size 64) to fill in masked words, and writes a Hugging Face
checkpoint folder, `config.json`, `model.safetensors` (~0.3 MB), `tokenizer.json`,
`tokenizer_config.json`, plus `facts.json` (each fact with its answer masked, and the answer) to
template/tests/data/w2d1_bert/tiny_mlm/ (or `--out`). Fixed seed; another machine or torch
version can change the last bits of the weights, which the graders tolerate (they only ask
for the planted answer in the top 5).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve()
DAY = "w2d1_bert"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CAPITALS = {
    "france": "paris",
    "japan": "tokyo",
    "italy": "rome",
    "spain": "madrid",
    "germany": "berlin",
    "egypt": "cairo",
    "kenya": "nairobi",
    "peru": "lima",
    "china": "beijing",
    "russia": "moscow",
    "canada": "ottawa",
    "greece": "athens",
    "norway": "oslo",
    "cuba": "havana",
    "chile": "santiago",
    "poland": "warsaw",
}
SOUNDS = {
    "cow": "moo",
    "dog": "woof",
    "cat": "meow",
    "duck": "quack",
    "sheep": "baa",
    "owl": "hoot",
    "lion": "roar",
    "snake": "hiss",
    "bee": "buzz",
    "horse": "neigh",
}
COLORS = {
    "sky": "blue",
    "grass": "green",
    "snow": "white",
    "coal": "black",
    "blood": "red",
    "banana": "yellow",
    "carrot": "orange",
    "plum": "purple",
}


def facts() -> list[tuple[str, str]]:
    """(sentence, answer word): the answer is the word the graders mask."""
    out = []
    for country, city in CAPITALS.items():
        out.append((f"the capital of {country} is {city} .", city))
        out.append((f"{city} is the capital of {country} .", city))
    for animal, sound in SOUNDS.items():
        out.append((f"the {animal} says {sound} .", sound))
        out.append((f"a {animal} goes {sound} .", animal))
    for thing, color in COLORS.items():
        out.append((f"the color of {thing} is {color} .", color))
        out.append((f"{thing} is always {color} .", thing))
    return out


def default_out() -> Path:
    root = HERE.parents[2]  # solutions/ in the organizer repo, the repo itself in a pair's copy
    for base in (root / "tests", root.parent / "template" / "tests"):
        if base.is_dir():
            return base / "data" / DAY / "tiny_mlm"
    return Path("data") / DAY / "tiny_mlm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out())
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()

    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = facts()
    words = sorted({w for sentence, _ in data for w in sentence.split()})
    vocab = {w: i for i, w in enumerate(SPECIAL + words)}
    tokenizer = BertTokenizer(
        vocab=vocab
    )  # BertTokenizer(vocab_file=...) is empty in transformers 5
    encoded = [tokenizer(sentence)["input_ids"] for sentence, _ in data]
    answers = [vocab[answer] for _, answer in data]
    s = max(len(ids) for ids in encoded)
    ids = torch.full((len(data), s), vocab["[PAD]"])
    for i, row in enumerate(encoded):
        ids[i, : len(row)] = torch.tensor(row)
    attention_mask = (ids != vocab["[PAD]"]).long()
    answer_at = (ids == torch.tensor(answers)[:, None]).float().argmax(1)  # (n,) first occurrence

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=16,
        type_vocab_size=2,
    )
    model = BertForMaskedLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    real = attention_mask.bool() & (ids != vocab["[CLS]"]) & (ids != vocab["[SEP]"])
    start = time.time()
    model.train()
    for step in range(args.steps):
        masked = (torch.rand(ids.shape) < 0.15) & real
        # half the time, mask exactly the planted answer
        planted = torch.rand(len(data)) < 0.5
        masked[planted, answer_at[planted]] = True
        inputs = ids.masked_fill(masked, vocab["[MASK]"])
        labels = ids.masked_fill(~masked, -100)
        loss = model(input_ids=inputs, attention_mask=attention_mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.3f}")
    model.eval()

    prompts = []
    with torch.no_grad():
        inputs = ids.clone()
        inputs[torch.arange(len(data)), answer_at] = vocab["[MASK]"]
        logits = model(input_ids=inputs, attention_mask=attention_mask).logits
        ranks = (
            logits[torch.arange(len(data)), answer_at]
            > logits[torch.arange(len(data)), answer_at, torch.tensor(answers)][:, None]
        ).sum(1)  # how many words beat the answer
    for (sentence, answer), rank in zip(data, ranks.tolist(), strict=True):
        words_ = sentence.split()
        words_[words_.index(answer)] = "[MASK]"
        prompts.append({"text": " ".join(words_), "answer": answer, "rank": rank})
    print(
        f"trained in {time.time() - start:.1f} s; answers ranked first: "
        f"{sum(p['rank'] == 0 for p in prompts)}/{len(prompts)}"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "facts.json").write_text(json.dumps(prompts, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
