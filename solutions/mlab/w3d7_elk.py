"""Day w3d7_elk: Eliciting Latent Knowledge with Contrast-Consistent Search (optional day).

Burns, Ye, Klein & Steinhardt (2022), "Discovering Latent Knowledge in Language Models Without
Supervision": turn each statement into a *contrast pair* ("... This is true." / "... This is
false."), read a model's hidden states `x+` and `x-` for both halves, normalize each half on its
own, and fit a linear probe `p(x) = sigmoid(theta . x + b)` whose two outputs are *consistent*
(`p(x+) = 1 - p(x-)`, as probabilities of "true" must be) and *confident* (not both 0.5). No label
is used: the direction found is "truth" only up to sign. A supervised logistic probe on the same
features is the comparison.

You work on synthetic hidden states first (given: a planted truth direction, a large shared
offset between the two halves, distractor directions that both halves share, and noise), where
the answer is known, then on real MiniLM hidden states of generated statements (the docs page).
Read docs/w3d7_elk.md.

Shapes: n contrast pairs (statements), d hidden size, b batch, s sequence length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

# -- given: synthetic hidden states with a planted truth ---------------------------------------


@dataclass
class SyntheticStates:
    """Hidden states of n contrast pairs with known structure (see `synthetic_hidden_states`)."""

    x_plus: Float[Tensor, "n d"]  # the "... is true." half
    x_minus: Float[Tensor, "n d"]  # the "... is false." half
    labels: Int[Tensor, " n"]  # 1 when the statement is true (x_plus is the correct half)
    truth: Float[Tensor, " d"]  # unit vector: the planted truth direction
    offset: Float[Tensor, " d"]  # unit vector: the shared per-class offset
    distractors: Float[Tensor, "d k"]  # orthonormal columns: content both halves share


def synthetic_hidden_states(
    n: int = 512,
    d: int = 32,
    *,
    n_distractors: int = 4,
    truth_scale: float = 1.0,
    offset_scale: float = 8.0,
    distractor_scale: float = 3.0,
    noise: float = 0.8,
    seed: int = 0,
) -> SyntheticStates:
    """Hidden states of n contrast pairs, with orthonormal directions t (truth), o (offset) and
    k distractors D, drawn once from `seed`. With y_i = +1 when statement i is true, else -1:

        x+_i = offset_scale o + D c_i + truth_scale y_i t + noise e+_i
        x-_i = -offset_scale o + D c_i - truth_scale y_i t + noise e-_i

    The offset says which half of the pair this is (the word "true" or "false" at the end): large
    and consistent, but unrelated to truth. The content c_i ~ N(0, distractor_scale^2) is the same
    in both halves (what the statement is about). Only t carries the truth, with opposite signs in
    the two halves: "x is true" is a true sentence exactly when "x is false" is a false one.
    """
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g))  # (d, d) orthonormal columns
    truth, offset, distractors = basis[:, 0], basis[:, 1], basis[:, 2 : 2 + n_distractors]
    labels = torch.randint(0, 2, (n,), generator=g)
    y = (2 * labels - 1).float()[:, None]  # (n, 1): +1 true, -1 false
    content = distractor_scale * torch.randn(n, n_distractors, generator=g) @ distractors.T
    noise_plus, noise_minus = noise * torch.randn(2, n, d, generator=g)
    x_plus = offset_scale * offset + content + truth_scale * y * truth + noise_plus
    x_minus = -offset_scale * offset + content - truth_scale * y * truth + noise_minus
    return SyntheticStates(x_plus, x_minus, labels, truth, offset, distractors)


# -- given: generated true and false statements ------------------------------------------------

CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Japan": "Tokyo",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Canada": "Ottawa",
    "Greece": "Athens",
    "Norway": "Oslo",
    "Russia": "Moscow",
}
KINDS = {  # thing -> its category; a false statement puts a thing in another category
    "dog": "animal",
    "cat": "animal",
    "horse": "animal",
    "eagle": "animal",
    "rose": "plant",
    "oak": "plant",
    "tulip": "plant",
    "fern": "plant",
    "hammer": "tool",
    "saw": "tool",
    "wrench": "tool",
    "drill": "tool",
    "apple": "fruit",
    "banana": "fruit",
    "cherry": "fruit",
    "lemon": "fruit",
}


def make_statements(n: int, seed: int = 0) -> tuple[list[str], Int[Tensor, " n"]]:
    """n simple statements, half of them true (label 1), of four kinds drawn at random: sums
    ("3 plus 4 is 7."), comparisons ("9 is larger than 2."), capitals and categories."""
    g = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=g))]

    countries, things, kinds = list(CAPITALS), list(KINDS), sorted(set(KINDS.values()))
    statements, labels = [], torch.arange(n) % 2
    labels = labels[torch.randperm(n, generator=g)]
    for true in labels.tolist():
        kind = int(torch.randint(4, (1,), generator=g))
        if kind == 0:
            a, b = (int(v) for v in torch.randint(1, 20, (2,), generator=g))
            c = a + b if true else a + b + pick([-3, -2, -1, 1, 2, 3])
            statements.append(f"{a} plus {b} is {c}.")
        elif kind == 1:
            a, b = (int(v) for v in torch.randperm(50, generator=g)[:2] + 1)
            a, b = (max(a, b), min(a, b)) if true else (min(a, b), max(a, b))
            statements.append(f"{a} is larger than {b}.")
        elif kind == 2:
            country = pick(countries)
            city = (
                CAPITALS[country]
                if true
                else CAPITALS[pick([c for c in countries if c != country])]
            )
            statements.append(f"The capital of {country} is {city}.")
        else:
            thing = pick(things)
            category = KINDS[thing] if true else pick([k for k in kinds if k != KINDS[thing]])
            article = "an" if category[0] in "aeiou" else "a"
            statements.append(f"A {thing} is {article} {category}.")
    return statements, labels


# -- contrast pairs from a real model ----------------------------------------------------------

TEMPLATE_PLUS = "{} This is true."
TEMPLATE_MINUS = "{} This is false."


def contrast_pair(statement: str) -> tuple[str, str]:
    """The two halves of one contrast pair: the statement asserted true, and asserted false."""
    return TEMPLATE_PLUS.format(statement), TEMPLATE_MINUS.format(statement)


def contrast_activations(
    model: nn.Module,
    tokenizer,
    statements: Sequence[str],
    layer: int,
    batch_size: int = 32,
) -> tuple[Float[Tensor, "n d"], Float[Tensor, "n d"]]:
    """Hidden states `(x_plus, x_minus)` of the contrast pairs of `statements` at `layer`.

    For each statement, build both texts with `contrast_pair`, tokenize them in batches of at
    most `batch_size` texts with padding (`tokenizer(texts, padding=True, return_tensors="pt")`),
    run `model(**batch, output_hidden_states=True)` without gradients, take
    `hidden_states[layer]` (b, s, d) (0 is the embeddings' output, i the i-th layer's) and
    average it over the real tokens of each text: padding must not count. Float32 on the CPU.
    """
    # BEGIN SOLUTION
    pairs = [contrast_pair(statement) for statement in statements]
    halves = []
    for texts in ([plus for plus, _ in pairs], [minus for _, minus in pairs]):
        pooled = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch, output_hidden_states=True).hidden_states[layer]  # (b, s, d)
            mask = batch["attention_mask"].to(hidden.dtype)[..., None]  # (b, s, 1)
            pooled.append((hidden * mask).sum(1) / mask.sum(1))  # (b, d): mean over real tokens
        halves.append(torch.cat(pooled).float().cpu())  # (n, d)
    return halves[0], halves[1]
    # END SOLUTION


# -- normalization -----------------------------------------------------------------------------


def normalize(
    x_plus: Float[Tensor, "n d"], x_minus: Float[Tensor, "n d"], eps: float = 1e-8
) -> tuple[Float[Tensor, "n d"], Float[Tensor, "n d"]]:
    """Normalize each half of the contrast pairs on its own, feature by feature:

        x~+ = (x+ - mean(x+)) / (std(x+) + eps),   x~- = (x- - mean(x-)) / (std(x-) + eps)

    with mean and std over the n pairs (population std, `correction=0`). Centering each class
    separately removes whatever tells "the ... true." half from "the ... false." half on
    average, so a probe cannot solve CCS by reading that instead of the truth.
    """
    # BEGIN SOLUTION
    x_plus, x_minus = (
        (x - x.mean(0)) / (x.std(0, correction=0) + eps)  # mean and std over the pairs
        for x in (x_plus, x_minus)
    )
    return x_plus, x_minus
    # END SOLUTION


# -- the CCS probe and its loss ----------------------------------------------------------------


class CCSProbe(nn.Module):
    """A linear probe with a sigmoid: p(x) = sigmoid(theta . x + b), the probability of "true".

    `generator` makes the initial weights reproducible: theta ~ N(0, 1/d), b = 0.
    """

    def __init__(self, d: int, generator: torch.Generator | None = None):
        super().__init__()
        self.linear = nn.Linear(d, 1)
        if generator is not None:
            with torch.no_grad():
                self.linear.weight.copy_(torch.randn(1, d, generator=generator) / d**0.5)
                self.linear.bias.zero_()

    def forward(self, x: Float[Tensor, "n d"]) -> Float[Tensor, " n"]:
        # BEGIN SOLUTION
        return torch.sigmoid(self.linear(x)).squeeze(-1)  # (n, 1) -> (n,)
        # END SOLUTION


def consistency_loss(
    p_plus: Float[Tensor, " n"], p_minus: Float[Tensor, " n"]
) -> Float[Tensor, ""]:
    """L_consistency = mean_i (p(x+_i) - (1 - p(x-_i)))^2: "x is true" and "x is false" must
    get probabilities that sum to one."""
    # BEGIN SOLUTION
    return (p_plus - (1 - p_minus)).pow(2).mean()
    # END SOLUTION


def confidence_loss(p_plus: Float[Tensor, " n"], p_minus: Float[Tensor, " n"]) -> Float[Tensor, ""]:
    """L_confidence = mean_i min(p(x+_i), p(x-_i))^2: rules out the degenerate consistent answer
    p = 0.5 everywhere by asking one of the two to be near 0."""
    # BEGIN SOLUTION
    return torch.minimum(p_plus, p_minus).pow(2).mean()
    # END SOLUTION


def ccs_loss(p_plus: Float[Tensor, " n"], p_minus: Float[Tensor, " n"]) -> Float[Tensor, ""]:
    """The CCS objective: consistency + confidence (both unweighted, as in the paper)."""
    return consistency_loss(p_plus, p_minus) + confidence_loss(p_plus, p_minus)


# -- training, with random restarts ------------------------------------------------------------


def train_probe(
    x_plus: Float[Tensor, "n d"],
    x_minus: Float[Tensor, "n d"],
    *,
    generator: torch.Generator,
    n_epochs: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 0.01,
) -> tuple[CCSProbe, float]:
    """One CCS run from a random start: return the probe and its final loss.

    Build `CCSProbe(d, generator=generator)` (and draw nothing else from `generator`), then take
    `n_epochs` full-batch steps of `torch.optim.AdamW(probe.parameters(), lr=lr,
    weight_decay=weight_decay)` on `ccs_loss(probe(x_plus), probe(x_minus))`. The loss returned
    is the trained probe's CCS loss (after the last step), as a Python float. No labels anywhere.
    """
    # BEGIN SOLUTION
    probe = CCSProbe(x_plus.shape[-1], generator=generator)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(n_epochs):
        optimizer.zero_grad()
        ccs_loss(probe(x_plus), probe(x_minus)).backward()
        optimizer.step()
    with torch.no_grad():
        loss = ccs_loss(probe(x_plus), probe(x_minus)).item()
    return probe, loss
    # END SOLUTION


def fit_ccs(
    x_plus: Float[Tensor, "n d"],
    x_minus: Float[Tensor, "n d"],
    *,
    n_tries: int = 10,
    seed: int = 0,
    **train_kwargs,
) -> CCSProbe:
    """Contrast-Consistent Search with random restarts: the CCS loss is not convex, so train
    `n_tries` probes with `train_probe` (passing on `train_kwargs`), all drawing their starts
    from one `torch.Generator().manual_seed(seed)`, and keep the one with the lowest final loss
    (the first one on ties). Labels are never seen: only the loss picks the winner.
    """
    # BEGIN SOLUTION
    generator = torch.Generator().manual_seed(seed)
    best, best_loss = None, float("inf")
    for _ in range(n_tries):
        probe, loss = train_probe(x_plus, x_minus, generator=generator, **train_kwargs)
        if loss < best_loss:
            best, best_loss = probe, loss
    return best
    # END SOLUTION


# -- evaluation --------------------------------------------------------------------------------


def ccs_predictions(
    probe: CCSProbe, x_plus: Float[Tensor, "n d"], x_minus: Float[Tensor, "n d"]
) -> Float[Tensor, " n"]:
    """The probe's probability that each statement is true, averaging both halves of the pair:
    p~_i = (p(x+_i) + (1 - p(x-_i))) / 2. Without gradients."""
    # BEGIN SOLUTION
    with torch.no_grad():
        return 0.5 * (probe(x_plus) + (1 - probe(x_minus)))
    # END SOLUTION


def accuracy_up_to_sign(probs: Float[Tensor, " n"], labels: Int[Tensor, " n"]) -> Float[Tensor, ""]:
    """Accuracy of the predictions `probs > 0.5` against `labels`, up to sign: CCS cannot tell
    "true" from "false" without a label, so a probe that is always wrong found the truth
    direction too. Return max(acc, 1 - acc) as a 0-dim float tensor."""
    # BEGIN SOLUTION
    acc = ((probs > 0.5) == labels.bool()).float().mean()
    return torch.maximum(acc, 1 - acc)
    # END SOLUTION


# -- the supervised comparison -----------------------------------------------------------------


def logistic_objective(
    probe: CCSProbe, x: Float[Tensor, "n d"], labels: Int[Tensor, " n"], C: float
) -> Float[Tensor, ""]:
    """scikit-learn's L2 logistic regression objective divided by C n: the mean binary cross-entropy
    of `probe(x)` against `labels` plus |theta|^2 / (2 C n) (the bias is not penalized)."""
    logits = probe.linear(x).squeeze(-1)  # (n,)
    bce = F.binary_cross_entropy_with_logits(logits, labels.float())
    return bce + probe.linear.weight.pow(2).sum() / (2 * C * len(x))


def fit_logistic_probe(
    x: Float[Tensor, "n d"], labels: Int[Tensor, " n"], *, C: float = 1.0, max_iter: int = 100
) -> CCSProbe:
    """The supervised baseline: a `CCSProbe(d)` trained with the labels, minimizing
    `logistic_objective(probe, x, labels, C)` to convergence (the optimum is unique: this is
    `sklearn.linear_model.LogisticRegression(C=C)`). Use `torch.optim.LBFGS` with
    `line_search_fn="strong_wolfe"`, `max_iter=max_iter` and a closure; start from zeros.
    """
    # BEGIN SOLUTION
    probe = CCSProbe(x.shape[-1])
    nn.init.zeros_(probe.linear.weight)
    nn.init.zeros_(probe.linear.bias)
    optimizer = torch.optim.LBFGS(
        probe.parameters(),
        max_iter=max_iter,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = logistic_objective(probe, x, labels, C)
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe
    # END SOLUTION
