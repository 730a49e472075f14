"""Graders for day w2d2_gpt2: the model against transformers' GPT2LMHeadModel on tiny random
configs, the samplers by chi-square tests with fixed seeds, generate and beam_search against
`GPT2LMHeadModel.generate`, and the tokenizer against transformers' GPT2Tokenizer built from the
same files.

Run one exercise with `pytest tests/test_w2d2_gpt2.py -k top_p`.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from checks import assert_close, assert_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlab import w2d2_gpt2 as m
from w2d2_gpt2_helpers import (
    assert_samples_follow,
    capture_call,
    copy_into,
    hf_generate,
    hf_gpt2,
    our_model,
    prompts,
    reference_tokenizer,
)

points = pytest.mark.points

CONFIGS = {
    "2 layers, 4 heads, d 32": {},
    "3 layers, 2 heads, d 24": {"n_layer": 3, "n_head": 2, "n_embd": 24, "vocab_size": 61},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: extra threads only add overhead, or far worse on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _logits(hf, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(ids).logits


# -- the model -----------------------------------------------------------------------------------


@points(1)
def test_gelu_new():
    x = torch.cat([torch.linspace(-6, 6, 241), 3 * torch.randn(200)])
    got = m.gelu_new(x)
    assert_close(
        got,
        F.gelu(x, approximate="tanh"),
        what="gelu_new on [-6, 6] (the tanh approximation, not the exact erf GELU)",
        atol=1e-6,
        rtol=1e-5,
    )


@points(1)
def test_gpt2_mlp():
    hf = hf_gpt2()
    ours = m.GPT2MLP(m.GPT2Config.from_hf(hf.config))
    copy_into(ours, hf.transformer.h[0].mlp, "GPT2MLP")
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        got, expected = ours(x), hf.transformer.h[0].mlp(x)
    assert_close(got, expected, what="GPT2MLP on x (2, 7, 32) against transformers' GPT2MLP")


@points(2)
@pytest.mark.parametrize("name", CONFIGS)
def test_gpt2_attention(name):
    hf = hf_gpt2(**CONFIGS[name])
    ours = m.GPT2Attention(m.GPT2Config.from_hf(hf.config))
    ids = prompts(hf.config.vocab_size, b=3, t=9)
    x, expected = capture_call(hf.transformer.h[1].attn, lambda: hf(ids))
    copy_into(ours, hf.transformer.h[1].attn, "GPT2Attention")
    with torch.no_grad():
        out = ours(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        pytest.fail("GPT2Attention.forward must return (output, (keys, values))", pytrace=False)
    assert_close(
        out[0],
        expected,
        what=f"GPT2Attention ({name}) on x {tuple(x.shape)} against transformers "
        "(causal mask, 1/sqrt(d_head) scaling, heads split as (n_head, d_head))",
    )


@points(2)
def test_gpt2_attention_cache():
    hf = hf_gpt2()
    config = m.GPT2Config.from_hf(hf.config)
    ours = m.GPT2Attention(config)
    copy_into(ours, hf.transformer.h[0].attn, "GPT2Attention")
    x = torch.randn(2, 10, 32)
    with torch.no_grad():
        full, (k_full, v_full) = ours(x)
        first, past = ours(x[:, :6])
        second, (k, v) = ours(x[:, 6:], past)
    shape = (2, config.n_head, 10, config.d_head)
    if tuple(k.shape) != shape or tuple(v.shape) != shape:
        pytest.fail(
            f"GPT2Attention cache after 6 + 4 positions: keys {tuple(k.shape)}, values "
            f"{tuple(v.shape)}; expected (b, n_head, past + t, d_head) = {shape}",
            pytrace=False,
        )
    assert_close(k, k_full, what="cached keys after 6 + 4 positions against keys of all 10")
    assert_close(
        torch.cat([first, second], 1),
        full,
        what="attention on 6 positions, then 4 more with the cache, against all 10 at once "
        "(new query i sits at position past + i: it sees keys 0 .. past + i)",
    )


@points(1)
def test_gpt2_block():
    hf = hf_gpt2()
    ours = m.GPT2Block(m.GPT2Config.from_hf(hf.config))
    copy_into(ours, hf.transformer.h[0], "GPT2Block")
    ids = prompts(hf.config.vocab_size, b=2, t=8)
    with torch.no_grad():
        hidden = hf(ids, output_hidden_states=True).hidden_states
        out, _ = ours(hidden[0])
    assert_close(
        out, hidden[1], what="GPT2Block on the embeddings (2, 8, 32) against transformers' block 0"
    )


@points(2)
@pytest.mark.parametrize("name", CONFIGS)
def test_gpt2_logits(name):
    hf = hf_gpt2(**CONFIGS[name])
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=3, t=11)
    with torch.no_grad():
        out = ours(ids)
    if not (isinstance(out, tuple) and len(out) == 2):
        pytest.fail("GPT2.forward must return (logits, past_key_values)", pytrace=False)
    assert_close(
        out[0], _logits(hf, ids), what=f"GPT2 logits ({name}) for input_ids (3, 11)", atol=1e-5
    )


@points(2)
def test_gpt2_kv_cache_positions():
    hf = hf_gpt2()
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=3, t=12)
    with torch.no_grad():
        a, past = ours(ids[:, :5])
        b, past = ours(ids[:, 5:9], past)
        c, past = ours(ids[:, 9:], past)
    if len(past) != hf.config.n_layer:
        pytest.fail(
            f"GPT2 returned {len(past)} cache entries, expected one per layer ({hf.config.n_layer})",
            pytrace=False,
        )
    assert_close(
        torch.cat([a, b, c], 1),
        _logits(hf, ids),
        what="GPT2 logits for 5, then 4, then 3 tokens with the cache, against transformers on all "
        "12 (position embeddings of new tokens start at the cache length)",
    )


@points(1)
def test_gpt2_tied_unembedding():
    hf = hf_gpt2()
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=2, t=6)
    with torch.no_grad():
        ours(ids)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_hf = sum(p.numel() for p in hf.parameters())
    if n_ours != n_hf:
        pytest.fail(
            f"GPT2 has {n_ours} parameters, transformers' GPT-2 {n_hf}: the unembedding must be "
            "wte.weight itself, not a separate lm_head",
            pytrace=False,
        )
    noise = 0.3 * torch.randn_like(hf.transformer.wte.weight)
    with torch.no_grad():
        hf.transformer.wte.weight += noise  # moves hf's lm_head too: they are one tensor
        ours.wte.weight += noise
        got = ours(ids)[0]
    assert_close(
        got, _logits(hf, ids), what="GPT2 logits after changing wte (the unembedding is tied)"
    )


LOAD_KINDS = ["GPT2LMHeadModel", "GPT2Model", "state dict + HF config", "old checkpoint keys"]


@points(2)
@pytest.mark.parametrize("kind", LOAD_KINDS)
def test_load_gpt2_weights(kind):
    hf = hf_gpt2(n_embd=24, n_head=3, n_layer=2)
    if kind == "GPT2LMHeadModel":
        ours = m.load_gpt2_weights(hf)
    elif kind == "GPT2Model":
        ours = m.load_gpt2_weights(hf.transformer)
    elif kind == "state dict + HF config":
        ours = m.load_gpt2_weights(hf.state_dict(), hf.config)
    else:  # the original checkpoint: no prefix, causal-mask buffers, our config
        state = dict(hf.transformer.state_dict())
        for i in range(hf.config.n_layer):
            state[f"h.{i}.attn.bias"] = torch.ones(1, 1, 64, 64).tril()
            state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        ours = m.load_gpt2_weights(state, m.GPT2Config.from_hf(hf.config))
    if not isinstance(ours, m.GPT2):
        pytest.fail(f"load_gpt2_weights returned {type(ours).__name__}, not a GPT2", pytrace=False)
    ids = prompts(hf.config.vocab_size, b=2, t=9)
    with torch.no_grad():
        got = ours(ids)[0]
    assert_close(
        got,
        _logits(hf, ids),
        what=f"logits of load_gpt2_weights({kind}) (transpose every Conv1D weight, square "
        "c_proj included)",
    )


@points(2)
@pytest.mark.slow
def test_real_gpt2_checkpoint():
    """The real 124M `gpt2` checkpoint, when it is in the Hugging Face cache (never downloaded)."""
    from transformers import GPT2LMHeadModel

    try:
        hf = GPT2LMHeadModel.from_pretrained("gpt2", local_files_only=True).eval()
    except OSError as e:
        pytest.skip(
            f"the gpt2 checkpoint is not cached here ({type(e).__name__}); nothing is downloaded"
        )
    ours = m.load_gpt2_weights(hf)
    ids = torch.tensor(
        [[15496, 995, 11, 314, 716, 257, 3303, 2746]]
    )  # "Hello world, I am a language model"
    with torch.no_grad():
        got = ours(ids)[0]
    assert_close(got, _logits(hf, ids), what="logits of the real gpt2 checkpoint", atol=1e-3)
    assert_equal(
        m.generate(ours, ids, 10),
        hf_generate(hf, ids, max_new_tokens=10),
        what="10 greedy tokens from the real gpt2",
    )


# -- choosing the next token ---------------------------------------------------------------------


@points(1)
def test_greedy():
    logits = torch.randn(5, 40)
    logits[2, -1] = 10.0  # the last token wins in one row
    assert_equal(m.greedy(logits), logits.argmax(-1), what="greedy on logits (5, 40)")


def _repeat_rows(logits: torch.Tensor, n: int) -> torch.Tensor:
    return logits.expand(n, -1).contiguous()


@points(2)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_with_temperature(temperature):
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    n = 20_000
    samples = m.sample_with_temperature(
        _repeat_rows(logits, n), temperature, torch.Generator().manual_seed(7)
    )
    if not isinstance(samples, torch.Tensor) or tuple(samples.shape) != (n,):
        got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        pytest.fail(
            f"sample_with_temperature on logits ({n}, 6) returned {got}, expected ({n},)",
            pytrace=False,
        )
    assert_samples_follow(
        samples,
        (logits[0] / temperature).softmax(-1),
        what=f"sample_with_temperature(temperature={temperature}), softmax(logits / temperature)",
    )


@points(1)
def test_sample_with_temperature_generator_and_masked():
    logits = torch.tensor([[0.0, float("-inf"), 1.0, float("-inf"), 0.5]])
    first = m.sample_with_temperature(
        _repeat_rows(logits, 500), 1.0, torch.Generator().manual_seed(3)
    )
    torch.manual_seed(123)  # the global state must not matter when a generator is passed
    again = m.sample_with_temperature(
        _repeat_rows(logits, 500), 1.0, torch.Generator().manual_seed(3)
    )
    assert_equal(again, first, what="sample_with_temperature twice with generators seeded alike")
    assert_samples_follow(first, logits[0].softmax(-1), what="sampling with -inf logits")


@points(1)
@pytest.mark.parametrize("k", [1, 3, 10, 40, 45])
def test_top_k(k):
    from transformers import TopKLogitsWarper

    logits = torch.randn(4, 40)
    got = m.top_k(logits, k)
    expected = TopKLogitsWarper(top_k=k)(None, logits.clone())
    assert_close(
        got, expected, what=f"top_k(logits (4, 40), k={k}): kept logits and -inf elsewhere"
    )


TOP_P_PROBS = [0.5, 0.3, 0.15, 0.05]
TOP_P_CASES = {0.4: 1, 0.79: 2, 0.81: 3, 0.94: 3, 0.96: 4, 1.0: 4}  # p -> tokens kept


@points(2)
@pytest.mark.parametrize("p", TOP_P_CASES)
def test_top_p_boundaries(p):
    probs = torch.tensor(TOP_P_PROBS)
    orders = [[0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]]  # the same distribution in three orders
    logits = torch.stack([probs.log()[torch.tensor(o).argsort()] for o in orders])
    got = m.top_p(logits, p)
    kept = TOP_P_CASES[p]
    expected = torch.stack(
        [
            torch.where(torch.tensor(o).argsort() < kept, row, float("-inf"))
            for o, row in zip(orders, logits, strict=True)
        ]
    )
    assert_close(
        got,
        expected,
        what=f"top_p(p={p}) on probabilities {TOP_P_PROBS} (shuffled per row): keep the {kept} most "
        "likely (the token whose probability crosses p is kept)",
    )


@points(1)
@pytest.mark.parametrize("p", [0.3, 0.9])
def test_top_p_random(p):
    from transformers import TopPLogitsWarper

    logits = 2 * torch.randn(6, 50)
    got = m.top_p(logits, p)
    expected = TopPLogitsWarper(top_p=p)(None, logits.clone())
    assert_close(got, expected, what=f"top_p(logits (6, 50), p={p}) against transformers")


@points(2)
@pytest.mark.parametrize("penalty", [0.5, 2.0])
def test_frequency_penalty(penalty):
    vocab = 30
    logits = torch.randn(3, vocab)
    ids = torch.tensor([[1, 1, 1, 4, 7, 1], [0, 0, 5, 5, 5, 5], [28, 2, 3, 28, 2, 0]])  # never 29
    got = m.frequency_penalty(logits, ids, penalty)
    expected = logits.clone()
    for row, seq in enumerate(ids.tolist()):
        for token, count in Counter(seq).items():
            expected[row, token] -= penalty * count
    assert_close(
        got,
        expected,
        what=f"frequency_penalty(logits (3, {vocab}), input_ids (3, 6), penalty={penalty}); the last "
        "token id is absent (count over the whole vocabulary)",
    )


# -- generate --------------------------------------------------------------------------------------


@points(2)
def test_generate_greedy_matches_transformers():
    hf = hf_gpt2()
    ids = prompts(hf.config.vocab_size, b=3, t=5)
    got = m.generate(our_model(hf), ids, 30)
    assert_equal(
        got,
        hf_generate(hf, ids, max_new_tokens=30),
        what="generate(prompts (3, 5), 30 greedy tokens) against GPT2LMHeadModel.generate",
    )


class CountingModel(torch.nn.Module):
    """Records how many tokens each forward call received."""

    def __init__(self, model):
        super().__init__()
        self.model, self.lengths = model, []

    def forward(self, input_ids, past_key_values=None):
        self.lengths.append(input_ids.shape[1])
        return self.model(input_ids, past_key_values)


@points(2)
def test_generate_cache_equals_no_cache():
    hf = hf_gpt2()
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=2, t=4, seed=5)
    counting = CountingModel(ours)
    cached = m.generate(counting, ids, 30, use_cache=True)
    uncached = m.generate(ours, ids, 30, use_cache=False)
    assert_equal(cached, uncached, what="30 greedy tokens with the cache against without")
    if counting.lengths[1:] != [1] * (len(counting.lengths) - 1):
        pytest.fail(
            f"generate(use_cache=True) fed the model {counting.lengths[:6]}... tokens per step: "
            "after the prompt, each step should run only the newest token",
            pytrace=False,
        )


SAMPLING = {
    "temperature 0.7, top_k 8, top_p 0.8": {"temperature": 0.7, "top_k": 8, "top_p": 0.8},
    "temperature 1.5, top_p 0.6": {"temperature": 1.5, "top_p": 0.6},
    "temperature 0.8": {"temperature": 0.8},
}


@points(2)
@pytest.mark.parametrize("name", SAMPLING)
def test_generate_sampling_distribution(name):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    kwargs = SAMPLING[name]
    hf = hf_gpt2(init=0.1)
    n = 4000
    prompt = prompts(hf.config.vocab_size, b=1, t=4, seed=11)
    out = m.generate(
        our_model(hf),
        prompt.expand(n, -1),
        1,
        do_sample=True,
        generator=torch.Generator().manual_seed(5),
        **kwargs,
    )
    scores = _logits(hf, prompt)[:, -1]
    scores = TemperatureLogitsWarper(kwargs["temperature"])(None, scores)
    if "top_k" in kwargs:
        scores = TopKLogitsWarper(kwargs["top_k"])(None, scores)
    if "top_p" in kwargs:
        scores = TopPLogitsWarper(kwargs["top_p"])(None, scores)
    assert_samples_follow(
        out[:, -1],
        scores.softmax(-1)[0],
        what=f"first tokens of generate(do_sample=True, {name}): divide by the temperature, "
        "then top_k, then top_p",
    )


@points(1)
def test_generate_sampling_is_seeded():
    hf = hf_gpt2()
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=2, t=3)

    def run():
        return m.generate(
            ours, ids, 12, do_sample=True, top_p=0.9, generator=torch.Generator().manual_seed(9)
        )

    first = run()
    torch.manual_seed(1)
    assert_equal(run(), first, what="generate(do_sample=True) twice with generators seeded alike")
    one = m.generate(
        ours, ids, 12, do_sample=True, top_k=1, generator=torch.Generator().manual_seed(2)
    )
    assert_equal(one, m.generate(ours, ids, 12), what="sampling with top_k=1 against greedy")


@points(1)
def test_generate_frequency_penalty():
    hf = hf_gpt2()
    penalty, t = 1.5, 8
    ids = prompts(hf.config.vocab_size, b=2, t=t)
    with torch.no_grad():  # fill each prompt's second half with the token greedy would pick next
        favourite = hf(ids[:, :4]).logits[:, -1].argmax(-1)
    ids[:, 4:] = favourite[:, None]
    out = m.generate(our_model(hf), ids, 15, frequency_penalty=penalty)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, t + 15):
        pytest.fail("generate returned the wrong shape", pytrace=False)
    logits = _logits(hf, out)
    vocab = hf.config.vocab_size
    counts = F.one_hot(out, vocab).cumsum(1).float()  # (b, s, vocab): occurrences up to s
    chosen = (logits - penalty * counts)[:, t - 1 : -1].argmax(-1)
    assert_equal(
        out[:, t:],
        chosen,
        what=f"generate(frequency_penalty={penalty}), greedy: each token is the argmax of the logits "
        "minus penalty x counts over the sequence so far (prompt included)",
    )


# -- beam search -----------------------------------------------------------------------------------


@points(3)
@pytest.mark.parametrize("num_beams", [2, 4])
def test_beam_search_matches_transformers(num_beams):
    hf = hf_gpt2()
    ids = prompts(hf.config.vocab_size, b=2, t=4, seed=3)
    got = m.beam_search(our_model(hf), ids, num_beams, 8)
    assert_equal(
        got,
        hf_generate(hf, ids, max_new_tokens=8, num_beams=num_beams, length_penalty=1.0),
        what=f"beam_search(prompts (2, 4), num_beams={num_beams}, 8 new tokens) against "
        "GPT2LMHeadModel.generate(num_beams=...)",
    )


@points(2)
def test_beam_search_brute_force():
    hf = hf_gpt2(vocab_size=5, init=0.5)
    new = 3
    ids = prompts(5, b=2, t=3, seed=4)
    got = m.beam_search(our_model(hf), ids, 5 ** (new - 1), new)  # the beam holds every prefix
    endings = torch.tensor(list(itertools.product(range(5), repeat=new)))  # (125, 3)
    best = []
    for prompt in ids:
        seqs = torch.cat([prompt.expand(len(endings), -1), endings], 1)
        logprobs = _logits(hf, seqs)[:, :-1].log_softmax(-1)
        total = logprobs.gather(-1, seqs[:, 1:, None])[:, -new:, 0].sum(-1)
        best.append(seqs[total.argmax()])
    assert_equal(
        got,
        torch.stack(best),
        what=f"beam_search with 25 beams over a vocabulary of 5 and {new} new tokens against the best "
        "of all 125 continuations",
    )


@points(1)
def test_beam_search_one_beam_is_greedy():
    hf = hf_gpt2()
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=3, t=4)
    got = m.beam_search(ours, ids, 1, 12)
    assert_equal(
        got,
        hf_generate(hf, ids, max_new_tokens=12),
        what="beam_search with num_beams=1 against greedy",
    )


@points(1)
def test_beam_search_cache():
    hf = hf_gpt2(n_layer=3)
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=2, t=4, seed=8)
    cached = m.beam_search(ours, ids, 3, 10, use_cache=True)
    uncached = m.beam_search(ours, ids, 3, 10, use_cache=False)
    assert_equal(
        cached,
        uncached,
        what="beam_search with the cache against without (reorder the cache by the chosen beams)",
    )


# -- the tokenizer ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    return reference_tokenizer(tmp_path_factory.mktemp("gpt2-tokenizer"))


@pytest.fixture(scope="module")
def tokenizer():
    return m.GPT2Tokenizer()


TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's what we've done; you'd agree?",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnew lines\n\n\nend",
    "numbers 1234567 and 3.14159, emails a.b@c.org",
    "héllo wörld, naïve café, Ελληνικά, русский, 日本語のテキスト",
    "emoji 🤗🚀 and symbols ©®™ ∑∫",
    "def f(x):\n    return x ** 2  # code",
]


@points(1)
def test_bytes_to_unicode():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    got = m.bytes_to_unicode()
    expected = bytes_to_unicode()
    if got != expected:
        wrong = [b for b in range(256) if got.get(b) != expected[b]][:5]
        pytest.fail(
            f"bytes_to_unicode: bytes {wrong} map to {[got.get(b) for b in wrong]}, expected "
            f"{[expected[b] for b in wrong]}",
            pytrace=False,
        )


@points(2)
def test_bpe(tokenizer, hf_tokenizer):
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()
    for word in [
        "world",
        " world",
        " unbelievably",
        " antidisestablishmentarianism",
        " 日本",
        "aaaaaaa",
    ]:
        chars = "".join(byte_chars[b] for b in word.encode("utf-8"))
        got = tokenizer.bpe(chars)
        expected = hf_tokenizer.tokenize(word)
        if list(got) != expected:
            pytest.fail(f"bpe({chars!r}) = {got}, expected {expected}", pytrace=False)


@points(2)
def test_encode(tokenizer, hf_tokenizer):
    got = tokenizer.encode("Hello world")
    if got != [15496, 995]:
        pytest.fail(f"encode('Hello world') = {got}, expected [15496, 995]", pytrace=False)
    for text in TEXTS:
        got, expected = tokenizer.encode(text), hf_tokenizer.encode(text)
        if got != expected:
            first = next(
                (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                min(len(got), len(expected)),
            )
            pytest.fail(
                f"encode({text!r}): {len(got)} ids, expected {len(expected)}; first difference at "
                f"position {first}: {got[first : first + 3]} instead of {expected[first : first + 3]}",
                pytrace=False,
            )


@points(1)
def test_decode(tokenizer, hf_tokenizer):
    for text in TEXTS:
        ids = hf_tokenizer.encode(text)
        got = tokenizer.decode(ids)
        if got != text:
            pytest.fail(f"decode of the {len(ids)} ids of {text!r} gave {got!r}", pytrace=False)
    partial = tokenizer.decode(hf_tokenizer.encode("🤗")[:1])  # a token ending mid-character
    if not isinstance(partial, str):
        pytest.fail("decode must return a str", pytrace=False)


@points(2)
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=40))
def test_round_trip(tokenizer, text):
    ids = tokenizer.encode(text)
    back = tokenizer.decode(ids)
    if back != text:
        pytest.fail(f"decode(encode({text!r})) = {back!r}", pytrace=False)


# -- benchmark -------------------------------------------------------------------------------------


@points(1)
@pytest.mark.bench
def test_bench_kv_cache(record_benchmark):
    """256 new tokens from a 4-token prompt on a 2-layer, d 64 model, batch 1: generate with the
    cache against without, and against GPT2LMHeadModel.generate (cached). Reference solution on
    2 busy cores: ~0.25 s cached, ~1.2 s uncached, HF ~0.6 s. Never fails on time."""
    hf = hf_gpt2(n_embd=64, n_head=4, n_layer=2, n_positions=300, init=0.1)
    ours = our_model(hf)
    ids = prompts(hf.config.vocab_size, b=1, t=4)
    new = 256

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    m.generate(ours, ids, 8)  # warm-up
    cached, cached_s = timed(lambda: m.generate(ours, ids, new, use_cache=True))
    uncached, uncached_s = timed(lambda: m.generate(ours, ids, new, use_cache=False))
    reference, hf_s = timed(lambda: hf_generate(hf, ids, max_new_tokens=new))
    assert_equal(cached, uncached, what="256 greedy tokens with the cache against without")
    assert_equal(cached, reference, what="256 greedy tokens against GPT2LMHeadModel.generate")
    shape = "2 layers, d 64, prompt 4, 256 new tokens, batch 1"
    record_benchmark(
        "kv_cache",
        shape,
        cached_s,
        uncached_s,
        note=f"cached vs uncached: {uncached_s / cached_s:.1f}x",
    )
    record_benchmark(
        "generate",
        shape,
        cached_s,
        hf_s,
        note=f"{new / cached_s:.0f} tokens/s against transformers' {new / hf_s:.0f} tokens/s",
    )
    print(
        f"generate: cached {new / cached_s:.0f} tok/s, uncached {new / uncached_s:.0f} tok/s, "
        f"transformers {new / hf_s:.0f} tok/s"
    )
