"""Graders for day w0_prep: each exercise against torch built-ins on random inputs and edge cases.

Run one exercise with `pytest tests/test_w0_prep.py -k softmax`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checks import assert_close, assert_equal, assert_vectorized
from mlab import w0_prep as m

points = pytest.mark.points

# -- einops ------------------------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("b,nrow", [(6, 3), (6, 2), (4, 4)])
def test_image_grid(b, nrow):
    images = torch.randn(b, 3, 5, 7)
    rows = [torch.cat(list(images[r * nrow : (r + 1) * nrow]), dim=-1) for r in range(b // nrow)]
    expected = torch.cat(rows, dim=-2)
    assert_close(
        m.image_grid(images, nrow),
        expected,
        what=f"image_grid(images {tuple(images.shape)}, nrow={nrow})",
    )


@points(1)
def test_image_grid_snapshot(snapshot):
    images = torch.arange(6 * 2 * 3 * 4, dtype=torch.float32).reshape(6, 2, 3, 4)
    snapshot.check("grid", m.image_grid(images, 3))


@points(2)
@pytest.mark.parametrize("c,h,w,p", [(3, 8, 8, 4), (1, 6, 9, 3), (2, 4, 4, 1)])
def test_patchify(c, h, w, p):
    image = torch.randn(c, h, w)
    expected = F.unfold(image[None], kernel_size=p, stride=p)[0].T  # (n, c*p*p)
    assert_close(m.patchify(image, p), expected, what=f"patchify(image {(c, h, w)}, patch={p})")


@points(1)
def test_channel_means():
    images = torch.randn(4, 3, 5, 6) + torch.tensor([1.0, -2.0, 3.0])[:, None, None]
    assert_close(
        m.channel_means(images),
        images.mean(dim=(0, 2, 3)),
        what="channel_means(images (4, 3, 5, 6))",
    )


@points(1)
def test_max_pool_2x2():
    images = torch.randn(2, 3, 6, 8)
    assert_close(
        m.max_pool_2x2(images), F.max_pool2d(images, 2), what="max_pool_2x2(images (2, 3, 6, 8))"
    )


@points(1)
def test_repeat_rows():
    x = torch.randn(5)
    assert_close(m.repeat_rows(x, 3), x.expand(3, 5), what="repeat_rows(x (5,), k=3)")


# -- einsum ------------------------------------------------------------------------------------


@points(1)
def test_einsum_trace():
    a = torch.randn(7, 7)
    assert_close(m.einsum_trace(a), torch.trace(a), what="einsum_trace(a (7, 7))")


@points(1)
def test_einsum_diagonal():
    a = torch.randn(6, 6)
    assert_close(m.einsum_diagonal(a), torch.diagonal(a), what="einsum_diagonal(a (6, 6))")


@points(1)
def test_einsum_outer():
    u, v = torch.randn(4), torch.randn(7)
    assert_close(m.einsum_outer(u, v), torch.outer(u, v), what="einsum_outer(u (4,), v (7,))")


@points(1)
def test_einsum_batched_matmul():
    a, c = torch.randn(3, 4, 5), torch.randn(3, 5, 2)
    assert_close(
        m.einsum_batched_matmul(a, c),
        torch.bmm(a, c),
        what="einsum_batched_matmul((3, 4, 5), (3, 5, 2))",
    )


@points(1)
@pytest.mark.parametrize("n,m_", [(4, 7), (6, 6)])
def test_einsum_mv(n, m_):
    a, v = torch.randn(n, m_), torch.randn(m_)
    assert_close(m.einsum_mv(a, v), torch.mv(a, v), what=f"einsum_mv(a {(n, m_)}, v ({m_},))")


@points(1)
def test_einsum_mm():
    a, b = torch.randn(3, 5), torch.randn(5, 4)
    assert_close(m.einsum_mm(a, b), torch.mm(a, b), what="einsum_mm(a (3, 5), b (5, 4))")


@points(1)
def test_einsum_inner():
    u, v = torch.randn(9), torch.randn(9)
    assert_close(m.einsum_inner(u, v), torch.dot(u, v), what="einsum_inner(u (9,), v (9,))")


# -- broadcasting and indexing -----------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("n,m_,d", [(5, 7, 3), (1, 4, 10), (6, 6, 1)])
def test_pairwise_distances(n, m_, d):
    x, y = torch.randn(n, d), torch.randn(m_, d)
    got = m.pairwise_distances(x, y)
    assert_close(
        got, torch.cdist(x, y), what=f"pairwise_distances(x {(n, d)}, y {(m_, d)})", atol=1e-4
    )


@points(1)
def test_pairwise_distances_vectorized():
    assert_vectorized(
        m.pairwise_distances,
        (torch.randn(4, 3), torch.randn(5, 3)),
        (torch.randn(40, 3), torch.randn(50, 3)),
    )


@points(1)
def test_gather_rows():
    x, idx = torch.randn(6, 4), torch.tensor([5, 0, 0, 3])
    assert_close(
        m.gather_rows(x, idx),
        torch.index_select(x, 0, idx),
        what="gather_rows(x (6, 4), idx [5, 0, 0, 3])",
    )


@points(2)
def test_batched_index_select():
    x, idx = torch.randn(3, 6, 4), torch.randint(0, 6, (3, 5))
    expected = torch.gather(x, 1, idx[..., None].expand(-1, -1, 4))
    assert_close(
        m.batched_index_select(x, idx),
        expected,
        what="batched_index_select(x (3, 6, 4), idx (3, 5))",
    )


@points(1)
def test_batched_index_select_vectorized():
    def args(b):
        return torch.randn(b, 6, 4), torch.randint(0, 6, (b, 5))

    assert_vectorized(m.batched_index_select, args(3), args(30))


@points(1)
def test_one_hot():
    labels = torch.tensor([0, 3, 1, 3, 4])
    got = m.one_hot(labels, 6)
    assert_close(got, F.one_hot(labels, 6).float(), what="one_hot([0, 3, 1, 3, 4], num_classes=6)")


@points(2)
def test_masked_mean():
    x = torch.randn(4, 6)
    mask = torch.rand(4, 6) > 0.5
    mask[0] = False  # a row with nothing selected averages to 0
    mask[1] = True
    expected = torch.stack(
        [x[i][mask[i]].mean() if mask[i].any() else torch.tensor(0.0) for i in range(4)]
    )
    assert_close(
        m.masked_mean(x, mask), expected, what="masked_mean(x (4, 6), mask with an empty row)"
    )


@points(2)
def test_segment_sum():
    values = torch.randn(9, 3)
    ids = torch.tensor([0, 2, 2, 4, 0, 4, 4, 2, 0])  # segments 1 and 5 are empty
    expected = torch.zeros(6, 3).index_add_(0, ids, values)
    assert_close(
        m.segment_sum(values, ids, 6),
        expected,
        what="segment_sum(values (9, 3), ids, num_segments=6)",
    )


@points(1)
def test_segment_sum_vectorized():
    def args(n):
        return torch.randn(n, 3), torch.randint(0, 4, (n,)), 4

    assert_vectorized(m.segment_sum, args(10), args(100))


# -- numerically stable reductions -------------------------------------------------------------

LARGE = torch.tensor([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1002.0]])


@points(1)
def test_logsumexp():
    x = torch.randn(4, 5, 7)
    assert_close(m.logsumexp(x), torch.logsumexp(x, dim=-1), what="logsumexp(x (4, 5, 7))")


@points(1)
def test_logsumexp_stable():
    assert_close(
        m.logsumexp(LARGE), torch.logsumexp(LARGE, -1), what="logsumexp of logits near +-1000"
    )


@points(1)
def test_logsumexp_infinite_rows():
    """A row of -inf (every probability 0) gives -inf, a row holding +inf gives +inf: no NaN."""
    inf = float("inf")
    x = torch.tensor([[-inf, -inf, -inf], [0.5, inf, -1.0], [-inf, 2.0, -inf], [1.0, 2.0, 3.0]])
    assert_close(
        m.logsumexp(x),
        torch.logsumexp(x, dim=-1),
        what="logsumexp of rows [-inf]*3, [0.5, inf, -1], [-inf, 2, -inf], [1, 2, 3] (is the "
        "maximum you subtract finite?)",
    )


@points(1)
def test_softmax():
    x = torch.randn(3, 4, 9)
    assert_close(m.softmax(x), torch.softmax(x, dim=-1), what="softmax(x (3, 4, 9))")


@points(1)
def test_softmax_stable():
    assert_close(m.softmax(LARGE), torch.softmax(LARGE, -1), what="softmax of logits near +-1000")


@points(1)
def test_log_softmax():
    x = torch.randn(5, 8)
    assert_close(m.log_softmax(x), torch.log_softmax(x, dim=-1), what="log_softmax(x (5, 8))")


@points(1)
def test_log_softmax_stable():
    x = torch.tensor([[0.0, -200.0, 50.0], [1000.0, 0.0, -1000.0]])
    assert_close(
        m.log_softmax(x), torch.log_softmax(x, -1), what="log_softmax with tiny probabilities"
    )


@points(2)
def test_cross_entropy():
    logits, targets = torch.randn(10, 6), torch.randint(0, 6, (10,))
    assert_close(
        m.cross_entropy(logits, targets),
        F.cross_entropy(logits, targets),
        what="cross_entropy((10, 6))",
    )


@points(1)
def test_cross_entropy_stable():
    targets = torch.tensor([2, 0])
    assert_close(
        m.cross_entropy(LARGE, targets),
        F.cross_entropy(LARGE, targets),
        what="cross_entropy near +-1000",
    )


# -- sampling and strides ----------------------------------------------------------------------


@points(2)
def test_sample_categorical_frequencies():
    """With 40k draws per row each frequency sits within 5 standard errors of its probability."""
    probs = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    n = 40_000
    got = m.sample_categorical(probs, n, torch.Generator().manual_seed(1))
    assert_equal(
        torch.as_tensor(got.shape),
        torch.tensor([3, n]),
        what="sample_categorical(probs (3, 3), n) shape",
    )
    freq = F.one_hot(got.long(), 3).float().mean(dim=1)
    tolerance = 5 * (probs * (1 - probs) / n).sqrt() + 1e-9
    bad = (freq - probs).abs() > tolerance
    assert not bad.any(), (
        f"sample_categorical: frequencies {freq.tolist()} are too far from probs {probs.tolist()} "
        "(over 5 standard errors); is the cumsum / searchsorted side right?"
    )


@points(2)
@pytest.mark.parametrize(
    "probs",
    [
        [[0.05, 0.05, 0.1, 0.2, 0.6], [0.0, 0.3, 0.0, 0.0, 0.7]],  # 2 rows, 5 classes
        [[0.2, 0.8], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],  # 4 rows, 2 classes
    ],
    ids=["2x5", "4x2"],
)
def test_sample_categorical_rectangular(probs):
    """Rows != classes != draws, so no axis mix-up hides behind a square shape."""
    probs = torch.tensor(probs)
    b, k = probs.shape
    n = 30_000
    got = m.sample_categorical(probs, n, torch.Generator().manual_seed(2))
    assert_equal(
        torch.as_tensor(got.shape),
        torch.tensor([b, n]),
        what=f"sample_categorical(probs {(b, k)}, n={n}) shape",
    )
    assert int(got.min()) >= 0 and int(got.max()) < k, (
        f"sample_categorical(probs {(b, k)}): samples range over [{int(got.min())}, "
        f"{int(got.max())}], expected classes 0..{k - 1}"
    )
    freq = F.one_hot(got.long(), k).float().mean(dim=1)  # (b, k)
    tolerance = 5 * (probs * (1 - probs) / n).sqrt() + 1e-9
    bad = (freq - probs).abs() > tolerance
    assert not bad.any(), (
        f"sample_categorical(probs {(b, k)}): frequencies {freq.tolist()} are too far from "
        f"probs {probs.tolist()}; clamping or a cumsum over the wrong dimension (rows vs classes)?"
    )


@points(1)
def test_sample_categorical_uses_generator():
    probs = torch.full((2, 10), 0.1)
    a = m.sample_categorical(probs, 50, torch.Generator().manual_seed(7))
    b = m.sample_categorical(probs, 50, torch.Generator().manual_seed(7))
    assert_equal(a, b, what="two draws with equally seeded generators")


@points(2)
@pytest.mark.parametrize("n,size,stride", [(10, 3, 1), (11, 4, 2), (5, 5, 1), (9, 2, 3)])
def test_sliding_windows(n, size, stride):
    x = torch.randn(n)
    got = m.sliding_windows(x, size, stride)
    assert_close(
        got, x.unfold(0, size, stride), what=f"sliding_windows(n={n}, size={size}, stride={stride})"
    )
    assert (
        got.data_ptr() == x.data_ptr()
        or got.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    ), "sliding_windows must return a view of x (as_strided), not a copy"


@points(1)
def test_sliding_windows_of_a_view():
    base = torch.randn(20)
    x = base[3::2]  # offset 3, stride 2
    assert_close(
        m.sliding_windows(x, 3, 2), x.unfold(0, 3, 2), what="sliding_windows of x = base[3::2]"
    )


@points(1)
def test_moving_average():
    x = torch.randn(12)
    expected = F.avg_pool1d(x[None, None], 4, stride=1)[0, 0]
    assert_close(m.moving_average(x, 4), expected, what="moving_average(x (12,), size=4)")


# -- computing through strided views -----------------------------------------------------------


def strided_inputs() -> dict[str, torch.Tensor]:
    """Square and rectangular matrices and vectors that are non-contiguous views with offsets."""
    base = torch.randn(40, 40)
    return {
        "a (5, 5) contiguous": torch.randn(5, 5),
        "a (5, 5) = base[1::3, 2::2]": base[1:16:3, 2:12:2],
        "a (6, 6) = base.T[3:9, 4:10]": base.T[3:9, 4:10],
        "a (4, 7) = base[2::5, 1:8]": base[2:22:5, 1:8],
        "a (7, 3) = base[::2, 5::4]": base[0:14:2, 5:17:4],
        "v (7,) = base[3, 4::3]": base[3, 4:25:3],
        "v (3,) = base[6:9, 2]": base[6:9, 2],
        "b (7, 3) = base.T[1:8, 10:13]": base.T[1:8, 10:13],
        "b (3, 4) = base[5::2, 9:13]": base[5:11:2, 9:13],
    }


@points(2)
@pytest.mark.parametrize(
    "name", ["a (5, 5) contiguous", "a (5, 5) = base[1::3, 2::2]", "a (6, 6) = base.T[3:9, 4:10]"]
)
def test_as_strided_trace(name):
    a = strided_inputs()[name]
    assert_close(m.as_strided_trace(a), torch.trace(a), what=f"as_strided_trace({name})")


@points(2)
@pytest.mark.parametrize(
    "a_name,v_name",
    [
        ("a (4, 7) = base[2::5, 1:8]", "v (7,) = base[3, 4::3]"),
        ("a (7, 3) = base[::2, 5::4]", "v (3,) = base[6:9, 2]"),
    ],
)
def test_as_strided_mv(a_name, v_name):
    inputs = strided_inputs()
    a, v = inputs[a_name], inputs[v_name]
    assert_close(
        m.as_strided_mv(a, v), torch.mv(a, v), what=f"as_strided_mv({a_name}, {v_name})", atol=1e-4
    )


@points(2)
@pytest.mark.parametrize(
    "a_name,b_name",
    [
        ("a (4, 7) = base[2::5, 1:8]", "b (7, 3) = base.T[1:8, 10:13]"),
        ("a (7, 3) = base[::2, 5::4]", "b (3, 4) = base[5::2, 9:13]"),
        ("a (5, 5) contiguous", "a (5, 5) = base[1::3, 2::2]"),
    ],
)
def test_as_strided_mm(a_name, b_name):
    inputs = strided_inputs()
    a, b = inputs[a_name], inputs[b_name]
    assert_close(
        m.as_strided_mm(a, b), torch.mm(a, b), what=f"as_strided_mm({a_name}, {b_name})", atol=1e-4
    )


BANNED = ["einsum", "matmul", "mm", "mv", "bmm", "dot", "inner", "tensordot", "trace", "diagonal"]


@points(1)
def test_as_strided_computes_through_views(monkeypatch):
    """With torch's contraction functions (einsum, matmul / @, mm, mv, dot, trace, diagonal ...)
    switched off, the three still work: they only build views, multiply and sum."""
    inputs = strided_inputs()
    a, v, b = (
        inputs["a (4, 7) = base[2::5, 1:8]"],
        inputs["v (7,) = base[3, 4::3]"],
        inputs["b (7, 3) = base.T[1:8, 10:13]"],
    )
    sq = inputs["a (5, 5) = base[1::3, 2::2]"]
    expected = (torch.trace(sq), torch.mv(a, v), torch.mm(a, b))

    def banned(name):
        def fail(*args, **kwargs):
            raise AssertionError(f"{name} called: build an as_strided view, then multiply and sum")

        return fail

    for name in BANNED:
        monkeypatch.setattr(torch, name, banned(f"torch.{name}"))
        if hasattr(torch.Tensor, name):
            monkeypatch.setattr(torch.Tensor, name, banned(f"Tensor.{name}"))
    for name in ("__matmul__", "__rmatmul__"):
        monkeypatch.setattr(torch.Tensor, name, banned("the @ operator"))
    got = (m.as_strided_trace(sq), m.as_strided_mv(a, v), m.as_strided_mm(a, b))
    monkeypatch.undo()
    names = ("as_strided_trace", "as_strided_mv", "as_strided_mm")
    for what, g, e in zip(names, got, expected, strict=True):
        assert_close(g, e, what=f"{what} with contractions switched off", atol=1e-4)
