"""Graders for day w1d5_autograd: every backward function against torch.autograd, the graph
machinery on hand-made and random (hypothesis) expression graphs, against torch.autograd and
central differences, then the nn pieces against torch.nn / torch.optim and training on digits.

Run one exercise's tests with `pytest tests/test_w1d5_autograd.py -k matmul_back`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from checks import assert_close
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mlab import w1d5_autograd as m
from w1d5_autograd_helpers import (
    _torch_reduce,
    clone_leaves,
    first_program,
    programs,
    run_clone,
    run_numpy,
    run_torch,
    torch_leaves,
)

points = pytest.mark.points

# Deterministic hypothesis: the same examples on every run, nothing saved between runs, no
# wall-clock deadline.
GRAPHS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
NUMERIC = settings(GRAPHS, max_examples=50)


@pytest.fixture(autouse=True)
def _grad_tracking_on():
    """Every test starts with grad tracking on, even if an earlier one left a no_grad block
    half-done (an __exit__ that raised)."""
    m._grad_tracking_enabled = True


def as_torch(x) -> torch.Tensor:
    """A clone Tensor, NumPy array or number as a torch tensor, for assert_close."""
    if isinstance(x, m.Tensor):
        x = x.array
    return torch.as_tensor(np.array(x))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def expect_runtime_error(fn, what: str) -> None:
    try:
        fn()
    except NotImplementedError:  # a subclass of RuntimeError: not what we are looking for
        raise
    except RuntimeError:
        return
    pytest.fail(f"{what} should raise RuntimeError, as PyTorch does", pytrace=False)


# -- backward functions against torch.autograd ---------------------------------------------------


def check_back(name, torch_fn, args, kwargs=None, grad_out=None, what=""):
    """Call m.<name>(grad_out, out, *args, **kwargs) and compare each array argument's gradient
    with what torch.autograd gives for torch_fn(*args)."""
    kwargs = kwargs or {}
    back = getattr(m, name)
    targs = [
        torch.tensor(a, dtype=torch.float64, requires_grad=True) if isinstance(a, np.ndarray) else a
        for a in args
    ]
    out = torch_fn(*targs)
    grad = rng(1).normal(size=tuple(out.shape)) if grad_out is None else grad_out
    out.backward(torch.from_numpy(np.array(grad)))
    given_grad = np.array(grad)
    result = back(
        given_grad,
        out.detach().numpy().copy(),
        *[a.copy() if isinstance(a, np.ndarray) else a for a in args],
        **kwargs,
    )
    call = f"{name}(grad_out, out, {', '.join(_describe(a) for a in args)}"
    call += "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")"
    if what:
        call += f" [{what}]"
    if not isinstance(result, tuple | list) or len(result) != len(args):
        pytest.fail(
            f"{call} returned {type(result).__name__}: expected a tuple with one gradient per "
            f"positional argument ({len(args)})",
            pytrace=False,
        )
    if not np.array_equal(given_grad, grad):
        pytest.fail(f"{call} modified grad_out in place: never do that", pytrace=False)
    for i, (a, t) in enumerate(zip(args, targs, strict=True)):
        if not isinstance(a, np.ndarray):
            continue
        if result[i] is None:
            pytest.fail(f"{call}: gradient {i} is None, expected shape {a.shape}", pytrace=False)
        assert_close(as_torch(result[i]), t.grad, what=f"{call}, gradient {i}", atol=1e-9)


def _describe(a) -> str:
    return f"x{a.shape}" if isinstance(a, np.ndarray) else repr(a)


UNBROADCAST = [
    ((2, 3, 4), (3, 1)),
    ((2, 3, 4), (1, 1, 4)),
    ((2, 3, 4), ()),
    ((3, 3), (3, 1)),
    ((3, 3), (1, 3)),
    ((5,), (1,)),
    ((3, 1, 4), (3, 1, 4)),
    ((4, 1, 5, 2), (1, 5, 1)),
]


@points(1)
@pytest.mark.parametrize("grad_shape,shape", UNBROADCAST, ids=str)
def test_unbroadcast(grad_shape, shape):
    grad = rng().normal(size=grad_shape)
    got = m.unbroadcast(grad.copy(), shape)
    expected = torch.from_numpy(grad).sum_to_size(shape)
    assert_close(as_torch(got), expected, what=f"unbroadcast(grad {grad_shape}, {shape})")


@points(1)
def test_log_back():
    check_back("log_back", torch.log, [rng().uniform(0.2, 3.0, size=(3, 4))])


@points(1)
def test_exp_back():
    check_back("exp_back", torch.exp, [rng().normal(size=(3, 4))])


@points(1)
def test_neg_back():
    check_back("neg_back", torch.neg, [rng().normal(size=(2, 5))])


PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 3), (5, 1)), ((3,), None)]
PAIRS += [(None, (2, 3)), ((), (2, 2))]


def pair_args(shapes, positive_second=False):
    r = rng(2)
    args = []
    for k, s in enumerate(shapes):
        if s is None:
            args.append(2.5 if k else -1.5)
        elif k == 1 and positive_second:
            args.append(r.uniform(0.5, 2.0, size=s))
        else:
            args.append(r.normal(size=s))
    return args


@points(1)
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_add_back(shapes):
    check_back("add_back", lambda x, y: x + y, pair_args(shapes))


@points(1)
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_sub_back(shapes):
    check_back("sub_back", lambda x, y: x - y, pair_args(shapes))


@points(1)
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_mul_back(shapes):
    check_back("mul_back", lambda x, y: x * y, pair_args(shapes))


@points(1)
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_div_back(shapes):
    check_back("div_back", lambda x, y: x / y, pair_args(shapes, positive_second=True))


MATMULS = [((3, 4), (4, 5)), ((4, 4), (4, 4)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5))]
MATMULS += [((2, 1, 3, 4), (5, 4, 2)), ((1, 3), (3, 1))]


@points(1)
@pytest.mark.parametrize("shapes", MATMULS, ids=str)
def test_matmul_back(shapes):
    check_back("matmul_back", torch.matmul, pair_args(shapes))


REDUCTIONS = [
    ((3, 4, 5), None, False),
    ((3, 4, 5), None, True),
    ((3, 4, 5), 1, False),
    ((3, 4, 5), -1, True),
    ((3, 4, 5), (0, 2), False),
    ((3, 4, 5), (-1, 0), True),
    ((4,), 0, False),
    ((), None, False),
]


@points(1)
@pytest.mark.parametrize("shape,dim,keepdim", REDUCTIONS, ids=str)
def test_sum_back(shape, dim, keepdim):
    check_back(
        "sum_back",
        lambda x: _torch_reduce(x, "sum", dim, keepdim),
        [rng().normal(size=shape)],
        {"dim": dim, "keepdim": keepdim},
    )


@points(1)
@pytest.mark.parametrize("shape,dim,keepdim", REDUCTIONS, ids=str)
def test_mean_back(shape, dim, keepdim):
    check_back(
        "mean_back",
        lambda x: _torch_reduce(x, "mean", dim, keepdim),
        [rng().normal(size=shape)],
        {"dim": dim, "keepdim": keepdim},
    )


@points(1)
@pytest.mark.parametrize(
    "shape,new", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((6,), (1, 2, 3)), ((), (1, 1))], ids=str
)
def test_reshape_back(shape, new):
    check_back("reshape_back", lambda x: x.reshape(new), [rng().normal(size=shape)], {"shape": new})


@points(1)
@pytest.mark.parametrize(
    "shape,dims",
    [
        ((3, 4), (1, 0)),
        ((2, 3, 4), (1, 2, 0)),
        ((2, 3, 4), (2, 0, 1)),
        ((2, 3, 4, 5), (3, 1, 0, 2)),
    ],
    ids=str,
)
def test_permute_back(shape, dims):
    check_back(
        "permute_back", lambda x: x.permute(dims), [rng().normal(size=shape)], {"dims": dims}
    )


@points(1)
@pytest.mark.parametrize(
    "shape,new",
    [((3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1, 3), (4, -1, 5, -1)), ((), (2, 3))],
    ids=str,
)
def test_expand_back(shape, new):
    check_back("expand_back", lambda x: x.expand(new), [rng().normal(size=shape)], {"shape": new})


INDICES = [
    2,
    -1,
    slice(1, 4),
    slice(0, 5, 2),
    np.array([0, 2, 2, 4, 2]),
    np.array([[0, 1], [1, 1]]),
    (np.array([1, 1, 3]), np.array([0, 0, 2])),
    (slice(None), 1),
    (slice(None), np.array([3, 3, 0])),
    (Ellipsis, -2),
]


def _torch_index(index):
    if isinstance(index, tuple):
        return tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    return torch.as_tensor(index) if isinstance(index, np.ndarray) else index


@points(1)
@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem_back(index):
    check_back(
        "getitem_back",
        lambda x: x[_torch_index(index)],
        [rng().normal(size=(5, 4))],
        {"index": index},
        what="repeated indices must add up" if "array" in repr(index) else "",
    )


@points(2)
@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((4, 5), (5,)), ((3, 1), (1, 4))], ids=str)
def test_maximum_back(shapes):
    r = rng(3)
    x, y = (r.integers(-2, 3, size=s).astype(np.float64) for s in shapes)  # many ties
    check_back("maximum_back", torch.maximum, [x, y], what="ties split the gradient in half")


@points(1)
def test_maximum_back_number():
    x = rng().integers(-2, 3, size=(3, 4)).astype(np.float64)

    def fn(x, y):
        return torch.maximum(x, torch.tensor(y, dtype=torch.float64))

    check_back("maximum_back", fn, [x, 0.0], what="with a number")


@points(1)
def test_relu_back():
    x = rng().normal(size=(4, 5))
    x[0] = 0.0
    check_back("relu_back", torch.relu, [x], what="zeros in x get gradient 0")


@points(2)
@pytest.mark.parametrize("n,m_", [(3, 4), (5, 2)])
def test_backward_by_hand(n, m_):
    """L = sum(log(a * b) * c), b broadcast over rows and c over columns: against torch."""
    r = rng(3)
    a, b = r.uniform(0.5, 2.0, size=(n, m_)), r.uniform(0.5, 2.0, size=(m_,))
    c = r.normal(size=(n, 1))
    ta, tb, tc = (torch.tensor(v, requires_grad=True) for v in (a, b, c))
    (torch.log(ta * tb) * tc).sum().backward()
    got = m.backward_by_hand(a.copy(), b.copy(), c.copy())
    call = f"backward_by_hand(a {a.shape}, b {b.shape}, c {c.shape})"
    if not isinstance(got, tuple | list) or len(got) != 3:
        pytest.fail(
            f"{call} should return (dL/da, dL/db, dL/dc), got {type(got).__name__}", pytrace=False
        )
    for name, g, t in zip("abc", got, (ta, tb, tc), strict=True):
        assert_close(as_torch(g), t.grad, what=f"{call}: dL/d{name}", atol=1e-9)


# -- Tensor, no_grad and the recipes --------------------------------------------------------------


@points(1)
def test_is_leaf_matches_torch():
    a = rng().normal(size=3)
    x, c = m.Tensor(a, requires_grad=True), m.Tensor(a)
    tx, tc = torch.tensor(a, requires_grad=True), torch.tensor(a)
    ours = {"x": x.is_leaf, "c": c.is_leaf}
    ours |= {"x * 2": (x * 2).is_leaf, "c * 2": (c * 2).is_leaf, "x * c": (x * c).is_leaf}
    theirs = {"x": tx.is_leaf, "c": tc.is_leaf}
    theirs |= {"x * 2": (tx * 2).is_leaf, "c * 2": (tc * 2).is_leaf, "x * c": (tx * tc).is_leaf}
    assert ours == theirs, f"is_leaf: got {ours}, PyTorch says {theirs} (x requires grad, c not)"


@points(2)
def test_wrap_forward_fn_records_recipe():
    x = m.Tensor(rng().normal(size=(2, 3)), requires_grad=True)
    c = m.Tensor(rng(1).normal(size=3))
    z = m.mul(c, x)
    assert isinstance(z, m.Tensor), f"mul(c, x) returned {type(z).__name__}, expected a Tensor"
    assert_close(as_torch(z), as_torch(c.array * x.array), what="mul(c, x) value")
    assert z.requires_grad and z.recipe is not None, "mul(c, x) with x requiring grad: no recipe"
    r = z.recipe
    assert r.func is np.multiply, f"recipe.func should be np.multiply, got {r.func!r}"
    assert len(r.args) == 2 and all(isinstance(a, np.ndarray) for a in r.args), (
        "recipe.args should hold the two arguments as NumPy arrays (Tensors unwrapped)"
    )
    assert set(r.parents) == {1} and r.parents[1] is x, (
        f"recipe.parents should be {{1: x}} (only x requires grad), got keys {sorted(r.parents)}"
    )
    s = x.sum(dim=1, keepdim=True)
    assert s.recipe is not None and s.recipe.kwargs == {"dim": 1, "keepdim": True}, (
        "x.sum(dim=1, keepdim=True): recipe.kwargs should be {'dim': 1, 'keepdim': True}"
    )
    assert m.BACK_FUNCS[s.recipe.func] is m.sum_back
    w = m.mul(c, 2.0)
    assert not w.requires_grad and w.recipe is None, "c * 2 with no input requiring grad: no recipe"
    argmax = m.wrap_forward_fn(np.argmax, is_differentiable=False)
    k = argmax(x)
    assert not k.requires_grad and k.recipe is None, "a non-differentiable op must not track"


@points(2)
def test_no_grad():
    x = m.Tensor(rng().normal(size=3), requires_grad=True)
    with m.no_grad():
        a = x * 2
        with m.no_grad():
            b = x + 1
        c = x - 1  # still inside the outer block
    d = x * 3
    flags = [t.requires_grad or t.recipe is not None for t in (a, b, c)]
    assert flags == [False] * 3, f"inside no_grad, outputs tracked (a, b, c): {flags}"
    assert d.requires_grad and d.recipe is not None, "after no_grad, tracking must be back on"
    try:
        with m.no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    assert m.grad_tracking_enabled() and (x * 2).requires_grad, (
        "an exception inside no_grad must not leave grad tracking off"
    )


# -- topological sort ------------------------------------------------------------------------------


class Node:
    def __init__(self, name, *children):
        self.name, self.children = name, list(children)

    def __repr__(self) -> str:
        return self.name


def children(node: Node) -> list[Node]:
    return node.children


def reachable(root: Node) -> set[int]:
    seen, todo = {id(root)}, [root]
    while todo:
        for c in todo.pop().children:
            if id(c) not in seen:
                seen.add(id(c))
                todo.append(c)
    return seen


def check_order(order, root: Node, graph: str) -> None:
    assert isinstance(order, list), f"topological_sort returned {type(order).__name__}, not a list"
    names = [n.name for n in order]
    shown = names if len(names) <= 20 else f"{names[:20]}..."
    counts = {}
    for n in order:
        counts[id(n)] = counts.get(id(n), 0) + 1
    twice = [n.name for n in order if counts[id(n)] > 1]
    assert not twice, f"{graph}: nodes listed more than once: {sorted(set(twice))} in {shown}"
    missing = len(reachable(root) - set(counts))
    extra = len(set(counts) - reachable(root))
    assert not missing and not extra, (
        f"{graph}: {missing} reachable nodes missing, {extra} unreachable nodes listed: {shown}"
    )
    assert order[-1] is root, f"{graph}: the start node must come last, got {shown}"
    position = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for c in n.children:
            assert position[id(c)] < position[id(n)], (
                f"{graph}: {c.name} (a child of {n.name}) must come before it: {shown}"
            )


@points(2)
def test_topological_sort_diamond():
    e = Node("e")
    d = Node("d", e)
    b, c = Node("b", d), Node("c", d, e)
    a = Node("a", b, c, d)
    check_order(m.topological_sort(a, children), a, "a->b,c,d; b->d; c->d,e; d->e")
    check_order(m.topological_sort(c, children), c, "the same graph from c")
    lone = Node("x")
    check_order(m.topological_sort(lone, children), lone, "a single node")


@points(2)
def test_topological_sort_random_dags():
    r = rng(5)
    for trial in range(5):
        nodes = []
        for i in range(60):
            picks = r.choice(i, size=min(i, r.integers(0, 4)), replace=False) if i else []
            nodes.append(Node(f"n{i}", *(nodes[j] for j in picks)))
        root = nodes[-1]
        check_order(m.topological_sort(root, children), root, f"random DAG {trial} (60 nodes)")


@points(1)
def test_topological_sort_cycle():
    a = Node("a")
    b = Node("b", a)
    c = Node("c", b)
    a.children.append(c)
    with pytest.raises(ValueError):
        m.topological_sort(Node("top", c), children)


@points(1)
def test_topological_sort_deep_chain():
    chain = [Node("n0")]
    for i in range(1, 5000):
        chain.append(Node(f"n{i}", chain[-1]))
    try:
        order = m.topological_sort(chain[-1], children)
    except RecursionError:
        pytest.fail(
            "topological_sort hit Python's recursion limit on a chain of 5000 nodes: keep an "
            "explicit stack instead of recursing",
            pytrace=False,
        )
    assert [n.name for n in order] == [n.name for n in chain], "chain: wrong order"


# -- backprop --------------------------------------------------------------------------------------


def both(a: np.ndarray, requires_grad: bool = True):
    return m.Tensor(a.copy(), requires_grad=requires_grad), torch.tensor(
        a, requires_grad=requires_grad
    )


@points(1)
def test_backprop_chain():
    x, tx = both(rng().normal(size=(3, 4)))
    ((x * 2 + 1).exp().log() - x).relu().sum().backward()
    ((tx * 2 + 1).exp().log() - tx).relu().sum().backward()
    assert x.grad is not None, "x.grad is None after backward"
    assert_close(as_torch(x.grad), tx.grad, what="x.grad of relu(log(exp(2x + 1)) - x).sum()")


@points(2)
def test_backprop_reused_nodes():
    x, tx = both(rng().normal(size=(4,)))
    w, tw = both(rng(1).normal(size=(3, 4)))

    def f(x, w):
        y = x * x + x  # x used three times
        h = w * y  # (3, 4)
        return (h * h + h / 2).sum() + y.sum()  # h used three times, y twice

    f(x, w).backward()
    f(tx, tw).backward()
    assert_close(as_torch(x.grad), tx.grad, what="x.grad with x and its results reused")
    assert_close(as_torch(w.grad), tw.grad, what="w.grad with x and its results reused")


@points(2)
def test_backprop_accumulates():
    x, tx = both(rng().normal(size=(2, 3)))
    (x * x).sum().backward()
    (x * 3).sum().backward()
    (tx * tx).sum().backward()
    (tx * 3).sum().backward()
    assert_close(as_torch(x.grad), tx.grad, what="x.grad after two backward calls (must add up)")


@points(2)
def test_backprop_leaf_semantics():
    x = m.Tensor(rng().normal(size=(2, 3)).astype(np.float32), requires_grad=True)
    c = m.Tensor(rng(1).normal(size=(3,)))  # float64: x * c is float64, x.grad still float32
    y = (x * c).maximum(0.1)  # a non-leaf
    z = y.mean()
    z.backward()
    tx = torch.tensor(x.array, requires_grad=True)
    torch.maximum(tx * torch.tensor(c.array), torch.tensor(0.1)).mean().backward()
    assert isinstance(x.grad, m.Tensor), f"x.grad should be a Tensor, got {type(x.grad).__name__}"
    assert not x.grad.requires_grad, "x.grad must not itself require grad"
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype, (
        f"x.grad: shape {x.grad.shape} dtype {x.grad.dtype}, expected {x.shape} {x.dtype}"
    )
    assert_close(as_torch(x.grad), tx.grad, what="x.grad of maximum(x * c, 0.1).mean()")
    assert c.grad is None, "c does not require grad: c.grad must stay None"
    assert y.grad is None and z.grad is None, "non-leaf tensors keep .grad None (as in PyTorch)"
    s = m.Tensor(np.array(3.0), requires_grad=True)
    s.backward()
    assert s.grad is not None and s.grad.item() == 1.0, "a scalar leaf's backward() gives grad 1"
    for value in ([0, 6], np.arange(3), np.array([True, False])):
        with pytest.raises(RuntimeError):
            torch.tensor(value, requires_grad=True)
        try:
            m.Tensor(value, requires_grad=True)
        except RuntimeError:
            continue
        pytest.fail(
            f"Tensor({value!r}, requires_grad=True) should raise RuntimeError, as torch does: only "
            "floating-point tensors can require gradients",
            pytrace=False,
        )


@points(1)
def test_backprop_end_grad():
    x, tx = both(rng().normal(size=(2, 3)))
    g = rng(1).normal(size=(2, 3))
    (x * x).backward(g)
    (tx * tx).backward(torch.from_numpy(g))
    (x * 2).backward(m.Tensor(g))
    (tx * 2).backward(torch.from_numpy(g))
    assert_close(as_torch(x.grad), tx.grad, what="x.grad with explicit end_grad (array, Tensor)")


@points(1)
def test_backprop_errors():
    c = m.Tensor(np.ones(3))
    x = m.Tensor(np.ones(3), requires_grad=True)
    expect_runtime_error(lambda: (c * 2).sum().backward(), "backward() on what does not need grad")
    expect_runtime_error(lambda: (x * 2).backward(), "backward() on 3 elements without end_grad")
    a = m.Tensor(np.ones(3), requires_grad=True)
    for shape in [(1, 3), (3, 1), (2,), ()]:
        ta = torch.ones(3, requires_grad=True)
        minus_ta, minus_a = -ta, -a
        with pytest.raises(RuntimeError):
            (-minus_ta).backward(torch.ones(shape))
        expect_runtime_error(
            lambda shape=shape, minus_a=minus_a: (-minus_a).backward(np.ones(shape)),
            f"(-(-a)).backward(end_grad of shape {shape}) for a of shape (3,)",
        )
        assert a.grad is None, (
            f"after the failed backward with end_grad {shape}, a.grad should still be None, got "
            f"shape {a.grad.shape}"
        )


@points(1)
def test_backprop_deep_graph():
    x, tx = both(np.array([0.5, -1.0]))
    y, ty = x, tx
    for _ in range(2000):
        y, ty = y * 1.001, ty * 1.001
    y.sum().backward()
    ty.sum().backward()
    assert_close(as_torch(x.grad), tx.grad, what="x.grad through 2000 multiplications")


# -- random expression graphs ------------------------------------------------------------------------


@points(8)
@GRAPHS
@given(program=programs(), twice=st.booleans())
@example(program=first_program(), twice=False)
def test_graphs_match_torch(program, twice):
    """Random graphs with broadcasting, reused nodes, reductions, views and integer indexing."""
    c_leaves, t_leaves = clone_leaves(m, program), torch_leaves(program)
    for _ in range(2 if twice else 1):
        c_values, c_loss = run_clone(m, program, c_leaves)
        t_values, t_loss = run_torch(program, t_leaves)
        c_loss.backward()
        t_loss.backward()
    runs = "backward() run twice, so gradients add up" if twice else "one backward()"
    where = f"\nprogram ({runs}):\n{program.text()}"
    assert_close(as_torch(c_loss), t_loss.detach(), what=f"loss{where}\n", atol=1e-8, rtol=1e-6)
    for i in program.leaves():
        got, expected = c_leaves[i].grad, t_leaves[i].grad
        if not program.steps[i].requires_grad:
            assert got is None, f"t{i} does not require grad, but t{i}.grad is set{where}"
            continue
        assert got is not None, f"t{i}.grad is None after backward{where}"
        assert_close(as_torch(got), expected, what=f"t{i}.grad{where}\n", atol=1e-8, rtol=1e-6)
    for i, (c, t) in enumerate(zip(c_values, t_values, strict=True)):
        if program.steps[i].op != "leaf":
            assert c.is_leaf == t.is_leaf, f"t{i}.is_leaf is {c.is_leaf}, not {t.is_leaf}{where}"
            assert c.grad is None, f"t{i} is not a leaf: its .grad must stay None{where}"


def central_differences(program, leaf: int, eps: float = 1e-6) -> np.ndarray:
    base = program.steps[leaf].value
    grad = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        up = run_numpy(program, {leaf: plus})[1]
        down = run_numpy(program, {leaf: minus})[1]
        grad[idx] = (up - down) / (2 * eps)
    return grad


@points(4)
@NUMERIC
@given(program=programs(max_steps=6))
@example(program=first_program())
def test_graphs_numerical(program):
    """The same random graphs against central differences (f(x + eps) - f(x - eps)) / 2 eps."""
    leaves = clone_leaves(m, program)
    _, loss = run_clone(m, program, leaves)
    loss.backward()
    for i in program.leaves():
        if program.steps[i].requires_grad:
            expected = central_differences(program, i)
            what = f"t{i}.grad against central differences\nprogram:\n{program.text()}\n"
            assert leaves[i].grad is not None, f"t{i}.grad is None after backward\n{what}"
            assert_close(as_torch(leaves[i].grad), torch.from_numpy(expected), what=what, atol=1e-5)


# -- Module, Linear, MLP ---------------------------------------------------------------------------


def param(n: int) -> m.Parameter:
    return m.Parameter(np.zeros(n, dtype=np.float32))


@points(2)
def test_module_registers_attributes():
    class Inner(m.Module):
        def __init__(self):
            super().__init__()
            self.w = param(2)

    class Outer(m.Module):
        def __init__(self):
            super().__init__()
            self.a = param(3)
            self.inner = Inner()
            self.n = 3
            self.t = m.Tensor(np.ones(2))  # a plain Tensor is not a parameter
            self.b = param(1)

    o = Outer()
    assert list(o._parameters) == ["a", "b"] and list(o._modules) == ["inner"], (
        f"registered {list(o._parameters)} and {list(o._modules)}, expected ['a', 'b'], ['inner']"
    )
    assert o.n == 3 and isinstance(o.inner, Inner) and o.a.shape == (3,), "attributes still work"
    o.b = 5
    o.inner = param(4)
    assert list(o._parameters) == ["a", "inner"] and not o._modules, (
        "assigning a new value to a name must drop what was registered there before"
    )


@points(2)
def test_parameters_order_and_sharing_like_torch():
    def build(module_cls, param_fn):
        class Leafy(module_cls):
            def __init__(self, n):
                super().__init__()
                self.w = param_fn(n)
                self.v = param_fn(n + 1)

        class Net(module_cls):
            def __init__(self):
                super().__init__()
                self.a = param_fn(10)
                self.first = Leafy(20)
                self.first.deeper = Leafy(30)
                self.b = param_fn(11)
                self.second = Leafy(40)
                self.tied = self.first.w  # shared: listed once
                self.second.again = self.first.deeper

        return Net()

    ours = build(m.Module, param)
    theirs = build(torch.nn.Module, lambda n: torch.nn.Parameter(torch.zeros(n)))
    got = [p.size for p in ours.parameters()]
    expected = [p.numel() for p in theirs.parameters()]
    assert got == expected, f"parameters() by size: got {got}, torch.nn.Module gives {expected}"
    got = [p.size for p in ours.parameters(recurse=False)]
    expected = [p.numel() for p in theirs.parameters(recurse=False)]
    assert got == expected, f"parameters(recurse=False): got {got}, expected {expected}"


def torch_linear(layer: m.Linear) -> torch.nn.Linear:
    out_f, in_f = layer.weight.shape
    t = torch.nn.Linear(in_f, out_f, bias=layer.bias is not None)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(layer.weight.array))
        if layer.bias is not None:
            t.bias.copy_(torch.from_numpy(layer.bias.array))
    return t


@points(1)
def test_linear_init():
    layer = m.Linear(50, 30, rng=rng())
    assert isinstance(layer.weight, m.Parameter) and isinstance(layer.bias, m.Parameter)
    assert layer.weight.shape == (30, 50) and layer.bias.shape == (30,), (
        f"weight {layer.weight.shape} and bias {layer.bias.shape}: expected (30, 50) and (30,)"
    )
    assert layer.weight.dtype == np.float32, f"weight dtype {layer.weight.dtype}, expected float32"
    bound = 1 / np.sqrt(50)
    w = layer.weight.array
    assert np.abs(w).max() <= bound + 1e-7, f"weights reach {np.abs(w).max():.4f} > {bound:.4f}"
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound, (
        f"weight std {w.std():.4f}: uniform in [-{bound:.4f}, {bound:.4f}] has {bound / 3**0.5:.4f}"
    )
    b = m.Linear(50, 4000, rng=rng(1)).bias.array  # many biases, to see their distribution
    assert b.dtype == np.float32, f"bias dtype {b.dtype}, expected float32"
    assert np.abs(b).max() <= bound + 1e-7 and np.abs(b).max() > 0.95 * bound, (
        f"Linear(50, 4000).bias ranges over [{b.min():.4f}, {b.max():.4f}]: expected uniform in "
        f"[-{bound:.4f}, {bound:.4f}] (1 / sqrt(in_features), as the weights)"
    )
    assert (
        abs(b.mean()) < 5 * bound / np.sqrt(3 * 4000)
        and abs(b.std() - bound / 3**0.5) < 0.05 * bound
    ), (
        f"Linear(50, 4000).bias: mean {b.mean():.4f} and std {b.std():.4f}; uniform in "
        f"[-{bound:.4f}, {bound:.4f}] has mean 0 and std {bound / 3**0.5:.4f}"
    )
    params = list(layer.parameters())
    assert len(params) == 2 and params[0] is layer.weight and params[1] is layer.bias
    no_bias = m.Linear(4, 3, bias=False, rng=rng())
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1, "bias=False: weight only"


@points(2)
@pytest.mark.parametrize("batch,bias", [((7,), True), ((2, 3), True), ((5,), False)], ids=str)
def test_linear_matches_torch(batch, bias):
    layer = m.Linear(5, 4, bias=bias, rng=rng())
    t = torch_linear(layer)
    a = rng(1).normal(size=(*batch, 5)).astype(np.float32)
    x, tx = both(a)
    w = rng(2).normal(size=(*batch, 4)).astype(np.float32)
    out, t_out = layer(x), t(tx)
    what = f"Linear(5, 4, bias={bias}) on x {a.shape}"
    assert_close(as_torch(out), t_out, what=what)
    (out * m.Tensor(w)).sum().backward()
    (t_out * torch.from_numpy(w)).sum().backward()
    assert_close(as_torch(x.grad), tx.grad, what=f"{what}: x.grad")
    assert_close(as_torch(layer.weight.grad), t.weight.grad, what=f"{what}: weight.grad")
    if bias:
        assert_close(as_torch(layer.bias.grad), t.bias.grad, what=f"{what}: bias.grad")


def torch_mlp(model: m.MLP) -> torch.nn.Sequential:
    relu = torch.nn.ReLU
    fcs = [model.fc1, model.fc2, model.fc3]
    return torch.nn.Sequential(
        torch_linear(fcs[0]), relu(), torch_linear(fcs[1]), relu(), torch_linear(fcs[2])
    )


@points(2)
def test_mlp_matches_torch():
    model = m.MLP(6, 8, 3, rng=rng())
    shapes = [p.shape for p in model.parameters()]
    expected = [(8, 6), (8,), (8, 8), (8,), (3, 8), (3,)]
    assert shapes == expected, f"MLP(6, 8, 3) parameter shapes {shapes}, expected {expected}"
    t = torch_mlp(model)
    x = rng(1).normal(size=(9, 6)).astype(np.float32)
    w = rng(2).normal(size=(9, 3)).astype(np.float32)
    out, t_out = model(m.Tensor(x)), t(torch.from_numpy(x))
    assert_close(as_torch(out), t_out, what="MLP(6, 8, 3) output")
    (out * m.Tensor(w)).sum().backward()
    (t_out * torch.from_numpy(w)).sum().backward()
    for p, tp in zip(model.parameters(), t.parameters(), strict=True):
        assert_close(as_torch(p.grad), tp.grad, what=f"MLP gradient of a parameter {p.shape}")


@points(1)
def test_mlp_init_uses_rng():
    """MLP(..., rng) creates fc1, fc2, fc3 in that order from the one rng it is given: the same
    values as three Linear layers drawn from an equally seeded rng, each with its own bound."""
    model = m.MLP(64, 32, 10, rng=rng(4))
    r = rng(4)
    expected = [m.Linear(64, 32, rng=r), m.Linear(32, 32, rng=r), m.Linear(32, 10, rng=r)]
    for name, layer in zip(("fc1", "fc2", "fc3"), expected, strict=True):
        ours = getattr(model, name, None)
        assert isinstance(ours, m.Linear), f"MLP should have a Linear attribute {name}"
        for which in ("weight", "bias"):
            assert_close(
                as_torch(getattr(ours, which)),
                as_torch(getattr(layer, which)),
                what=f"MLP(64, 32, 10, rng=rng(4)).{name}.{which} at init against Linear layers "
                "drawn in order from rng(4) (use the rng you are given, for every layer)",
                atol=0,
                rtol=0,
            )


# -- cross_entropy, SGD ----------------------------------------------------------------------------


@points(2)
def test_cross_entropy():
    a = rng().normal(size=(8, 5)) * 3
    targets = rng(1).integers(0, 5, size=8)
    for tgt in (targets, m.Tensor(targets)):
        x, tx = both(a)
        loss = m.cross_entropy(x, tgt)
        t_loss = F.cross_entropy(tx, torch.from_numpy(targets))
        assert_close(as_torch(loss), t_loss.detach(), what="cross_entropy((8, 5))")
        loss.backward()
        t_loss.backward()
        assert_close(as_torch(x.grad), tx.grad, what="gradient of cross_entropy((8, 5))")


@points(1)
def test_cross_entropy_stable():
    a = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1002.0], [0.0, -1e4, 1e4]])
    targets = np.array([2, 0, 1])
    x, tx = both(a)
    loss = m.cross_entropy(x, targets)
    t_loss = F.cross_entropy(tx, torch.from_numpy(targets))
    assert_close(as_torch(loss), t_loss.detach(), what="cross_entropy with logits up to 1e4")
    loss.backward()
    t_loss.backward()
    assert_close(as_torch(x.grad), tx.grad, what="gradient of cross_entropy with logits up to 1e4")


@points(2)
def test_numerical_gradient_mlp():
    model = m.MLP(5, 4, 3, rng=rng())
    params = list(model.parameters())
    for p in params:
        p.array = p.array.astype(np.float64)
    x = rng(1).normal(size=(6, 5))
    y = rng(2).integers(0, 3, size=6)
    m.cross_entropy(model(m.Tensor(x)), y).backward()
    eps = 1e-6
    for k, p in enumerate(params):
        numeric = np.zeros_like(p.array)
        for idx in np.ndindex(p.shape):
            old = p.array[idx]
            p.array[idx] = old + eps
            up = m.cross_entropy(model(m.Tensor(x)), y).item()
            p.array[idx] = old - eps
            down = m.cross_entropy(model(m.Tensor(x)), y).item()
            p.array[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        what = (
            f"gradient of parameter {k} {p.shape} of cross_entropy(MLP(x)) vs central differences"
        )
        assert_close(as_torch(p.grad), torch.from_numpy(numeric), what=what, atol=1e-6)


@points(2)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum):
    arrays = [rng(1).normal(size=(3, 4)), rng(2).normal(size=(4,))]
    ours = [m.Parameter(a.copy()) for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt = m.SGD(ours, lr=0.1, momentum=momentum)
    t_opt = torch.optim.SGD(theirs, lr=0.1, momentum=momentum)
    for step in range(3):
        for k, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
            g = rng(10 * step + k).normal(size=p.shape)
            p.grad, tp.grad = m.Tensor(g), torch.tensor(g)
        opt.step()
        t_opt.step()
        for p, tp in zip(ours, theirs, strict=True):
            what = f"SGD(lr=0.1, momentum={momentum}): parameter {p.shape} after step {step + 1}"
            assert_close(as_torch(p), tp.detach(), what=what)


@points(1)
def test_sgd_zero_grad_and_skip():
    p, q = m.Parameter(np.ones(3)), m.Parameter(np.ones(2))
    opt = m.SGD([p, q], lr=0.5)
    p.grad, q.grad = m.Tensor(np.ones(3)), m.Tensor(np.ones(2))
    opt.zero_grad()
    assert p.grad is None and q.grad is None, "zero_grad() sets every grad to None"
    p.grad = m.Tensor(np.full(3, 2.0))
    opt.step()
    assert_close(as_torch(p), torch.zeros(3, dtype=torch.float64), what="p after a step")
    assert_close(as_torch(q), torch.ones(2, dtype=torch.float64), what="q (grad None) after a step")


# -- training on digits ----------------------------------------------------------------------------

TARGET_ACCURACY = 0.94  # test accuracy after 10 epochs (the solution reaches about 0.97)


@pytest.fixture(scope="module")
def digits():
    return m.load_digits_data()


def copy_to_torch(model: m.MLP):
    t = torch_mlp(model)
    return t, torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)


@points(2)
def test_train_step_matches_torch(digits):
    x_train, y_train, _, _ = digits
    model = m.MLP(64, 32, 10, rng=rng())
    opt = m.SGD(model.parameters(), lr=0.1, momentum=0.9)
    t, t_opt = copy_to_torch(model)
    for step in range(3):
        xb, yb = x_train[step * 32 : (step + 1) * 32], y_train[step * 32 : (step + 1) * 32]
        opt.zero_grad()
        m.cross_entropy(model(m.Tensor(xb)), yb).backward()
        opt.step()
        t_opt.zero_grad()
        F.cross_entropy(t(torch.from_numpy(xb)), torch.from_numpy(yb)).backward()
        t_opt.step()
    for p, tp in zip(model.parameters(), t.parameters(), strict=True):
        assert_close(as_torch(p), tp.detach(), what=f"MLP parameter {p.shape} after 3 SGD steps")


@points(2)
def test_train_epoch_matches_torch(digits):
    x_train, y_train, _, _ = digits
    x, y = x_train[:300], y_train[:300]
    model = m.MLP(64, 32, 10, rng=rng())
    t, t_opt = copy_to_torch(model)
    loss = m.train_epoch(model, m.SGD(model.parameters(), lr=0.1, momentum=0.9), x, y, 64, rng(7))
    order, total = rng(7).permutation(300), 0.0
    for start in range(0, 300, 64):
        batch = order[start : start + 64]
        t_opt.zero_grad()
        t_loss = F.cross_entropy(t(torch.from_numpy(x[batch])), torch.from_numpy(y[batch]))
        t_loss.backward()
        t_opt.step()
        total += t_loss.item() * len(batch)
    what = "train_epoch on 300 examples, batch_size 64 (the last batch has 44)"
    assert_close(torch.tensor(float(loss)), torch.tensor(total / 300), what=f"{what}: mean loss")
    for p, tp in zip(model.parameters(), t.parameters(), strict=True):
        assert_close(as_torch(p), tp.detach(), what=f"{what}: parameter {p.shape}")


@points(1)
def test_evaluate(digits):
    _, _, x_test, y_test = digits
    model = m.MLP(64, 32, 10, rng=rng())
    t, _ = copy_to_torch(model)
    tracking = []

    class Spy(m.Module):  # records whether grad tracking is on while the model runs
        def forward(self, x):
            tracking.append(m.grad_tracking_enabled())
            return model(x)

    acc = m.evaluate(Spy(), x_test, y_test)
    expected = (t(torch.from_numpy(x_test)).argmax(-1).numpy() == y_test).mean()
    assert isinstance(acc, float), f"evaluate returned {type(acc).__name__}, expected a float"
    assert abs(acc - expected) < 1e-9, f"evaluate: {acc:.4f}, expected {expected:.4f}"
    assert tracking and not any(tracking), "evaluate must run the model under no_grad"
    assert m.grad_tracking_enabled(), "evaluate must leave grad tracking on"


@points(3)
def test_train_digits(digits):
    x_train, y_train, x_test, y_test = digits
    model = m.MLP(64, 64, 10, rng=rng(0))
    opt = m.SGD(model.parameters(), lr=0.1, momentum=0.9)
    order_rng = rng(1)
    losses = [m.train_epoch(model, opt, x_train, y_train, 64, order_rng) for _ in range(10)]
    acc = m.evaluate(model, x_test, y_test)
    assert acc >= TARGET_ACCURACY, (
        f"MLP(64, 64, 10), SGD(lr=0.1, momentum=0.9), 10 epochs of batch 64: test accuracy "
        f"{acc:.3f} < {TARGET_ACCURACY} (epoch losses {[round(v, 3) for v in losses]})"
    )


# -- benchmark -------------------------------------------------------------------------------------


def _median_time(fn, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@points(1)
@pytest.mark.bench
def test_bench_train_step(digits, record_benchmark):
    """One SGD step (forward, cross_entropy, backward, update) of the clone and of PyTorch."""
    x_train, y_train, _, _ = digits
    xb, yb = x_train[:64], y_train[:64]
    model = m.MLP(64, 64, 10, rng=rng())
    opt = m.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t, t_opt = copy_to_torch(model)
    for group in t_opt.param_groups:
        group["lr"] = 0.01
    txb, tyb = torch.from_numpy(xb), torch.from_numpy(yb)

    def ours():
        opt.zero_grad()
        loss = m.cross_entropy(model(m.Tensor(xb)), yb)
        loss.backward()
        opt.step()
        return loss

    def theirs():
        t_opt.zero_grad()
        loss = F.cross_entropy(t(txb), tyb)
        loss.backward()
        t_opt.step()
        return loss

    assert_close(as_torch(ours()), theirs().detach(), what="loss of the first step")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # at this size threads only add overhead, or worse on a busy machine
    try:
        clone_s, torch_s = _median_time(ours), _median_time(theirs)
    finally:
        torch.set_num_threads(threads)
    shape = "MLP 64-64-64-10, batch 64, float32"
    note = "clone vs torch (1 thread), median of 30 steps"
    record_benchmark("train_step", shape, clone_s, torch_s, note=note)
    print(f"train step: clone {clone_s * 1e6:.0f} us, torch {torch_s * 1e6:.0f} us")
