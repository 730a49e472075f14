"""Random expression graphs for the w1d5_autograd graders.

A `Program` is a list of steps; step i defines node t{i}: either a leaf (an array, requiring grad
or not) or one operation on earlier nodes, fresh leaves and Python numbers. Programs are drawn by
hypothesis with a NumPy shadow evaluation, so every operation stays in its domain (log of values
> 0.1, division by values away from 0, exp of values < 3, no huge numbers). The same program then
runs on the clone (`run_clone`), on PyTorch (`run_torch`) and in NumPy (`run_numpy`), and ends
in the scalar loss = sum over unused nodes t of (t * w_t).sum(), with fixed random weights w_t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

MAX_ABS = 1e3  # programs keep every value below this
MAX_SIZE = 96  # and every node this small


@dataclass
class Step:
    op: str  # "leaf" or an operation name
    inputs: tuple = ()  # node numbers (int) or Python numbers (float)
    kwargs: dict[str, Any] = field(default_factory=dict)
    value: np.ndarray | None = None  # a leaf's array
    requires_grad: bool = False  # a leaf's flag


@dataclass
class Program:
    steps: list[Step]
    weights: dict[int, np.ndarray]  # unused node -> weight of its term in the loss

    def __repr__(self) -> str:
        return "\n" + self.text()

    def text(self) -> str:
        shapes = [np.shape(v) for v in run_numpy(self)[0]]
        lines = []
        for i, s in enumerate(self.steps):
            if s.op == "leaf":
                lines.append(f"t{i} = leaf {shapes[i]} requires_grad={s.requires_grad}")
            else:
                lines.append(f"t{i} = {_expr(s)}  # {shapes[i]}")
        terms = " + ".join(f"(t{i} * w{i}).sum()" for i in self.weights)
        lines.append(f"loss = {terms}")
        return "\n".join(lines)

    def leaves(self) -> list[int]:
        return [i for i, s in enumerate(self.steps) if s.op == "leaf"]


def _name(x) -> str:
    return f"t{x}" if isinstance(x, int) else repr(x)


def _index_text(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, slice):
            out.append(
                f"{'' if p.start is None else p.start}:{'' if p.stop is None else p.stop}"
                + ("" if p.step in (None, 1) else f":{p.step}")
            )
        elif isinstance(p, np.ndarray):
            out.append(f"np.array({p.tolist()})")
        else:
            out.append(repr(p))
    return ", ".join(out)


def _expr(s: Step) -> str:
    a = [_name(x) for x in s.inputs]
    k = s.kwargs
    binary = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
    if s.op in binary:
        return f"{a[0]} {binary[s.op]} {a[1]}"
    if s.op == "neg":
        return f"-{a[0]}"
    if s.op == "maximum":
        return f"{a[0]}.maximum({a[1]})"
    if s.op in ("log", "exp", "relu"):
        return f"{a[0]}.{s.op}()"
    if s.op in ("sum", "mean"):
        return f"{a[0]}.{s.op}(dim={k['dim']}, keepdim={k['keepdim']})"
    if s.op in ("reshape", "expand"):
        return f"{a[0]}.{s.op}({k['shape']})"
    if s.op == "permute":
        return f"{a[0]}.permute({k['dims']})"
    if s.op == "getitem":
        return f"{a[0]}[{_index_text(k['index'])}]"
    raise ValueError(s.op)


# -- the three interpreters ------------------------------------------------------------------------


def _np_reduce(fn, x, dim, keepdim):
    return fn(x, axis=dim, keepdims=keepdim)


def _np_expand(x, shape):
    offset = len(shape) - np.ndim(x)
    full = tuple(np.shape(x)[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return np.broadcast_to(x, full)


NUMPY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "matmul": lambda a, b: a @ b,
    "maximum": np.maximum,
    "neg": np.negative,
    "log": np.log,
    "exp": np.exp,
    "relu": lambda x: np.maximum(x, 0.0),
    "sum": lambda x, dim, keepdim: _np_reduce(np.sum, x, dim, keepdim),
    "mean": lambda x, dim, keepdim: _np_reduce(np.mean, x, dim, keepdim),
    "reshape": lambda x, shape: np.reshape(x, shape),
    "permute": lambda x, dims: np.transpose(x, dims),
    "expand": _np_expand,
    "getitem": lambda x, index: np.asarray(x)[index],
}


def _apply_numpy(s: Step, values: list) -> np.ndarray:
    args = [values[x] if isinstance(x, int) else x for x in s.inputs]
    return np.asarray(NUMPY_OPS[s.op](*args, **s.kwargs), dtype=np.float64)


def run_numpy(program: Program, leaf_values: dict[int, np.ndarray] | None = None):
    """All node values and the loss, in float64 NumPy (leaf values may be overridden)."""
    values: list = []
    for i, s in enumerate(program.steps):
        if s.op == "leaf":
            values.append(leaf_values[i] if leaf_values and i in leaf_values else s.value)
        else:
            values.append(_apply_numpy(s, values))
    loss = 0.0
    for i, w in program.weights.items():
        loss = loss + float((values[i] * w).sum())
    return values, loss


def _torch_index(index):
    def conv(p):
        return torch.as_tensor(p) if isinstance(p, np.ndarray) else p

    return tuple(conv(p) for p in index) if isinstance(index, tuple) else conv(index)


def _torch_reduce(x, name, dim, keepdim):
    if dim is None:
        out = getattr(x, name)()
        return out.reshape((1,) * x.ndim) if keepdim else out
    return getattr(x, name)(dim=dim, keepdim=keepdim)


def _apply_torch(s: Step, values: list):
    a = [values[x] if isinstance(x, int) else x for x in s.inputs]
    k = s.kwargs
    if s.op == "maximum":
        b = a[1] if isinstance(a[1], torch.Tensor) else torch.tensor(a[1], dtype=torch.float64)
        c = a[0] if isinstance(a[0], torch.Tensor) else torch.tensor(a[0], dtype=torch.float64)
        return torch.maximum(c, b)
    if s.op in ("sum", "mean"):
        return _torch_reduce(a[0], s.op, k["dim"], k["keepdim"])
    if s.op == "getitem":
        return a[0][_torch_index(k["index"])]
    if s.op == "expand":
        return a[0].expand(k["shape"])
    return _generic(s.op, a, k, torch.relu)


def _generic(op: str, a: list, k: dict, relu):
    """Operator and method syntax shared by the clone and PyTorch."""
    if op == "add":
        return a[0] + a[1]
    if op == "sub":
        return a[0] - a[1]
    if op == "mul":
        return a[0] * a[1]
    if op == "div":
        return a[0] / a[1]
    if op == "matmul":
        return a[0] @ a[1]
    if op == "neg":
        return -a[0]
    if op == "log":
        return a[0].log()
    if op == "exp":
        return a[0].exp()
    if op == "relu":
        return relu(a[0])
    if op == "reshape":
        return a[0].reshape(k["shape"])
    if op == "permute":
        return a[0].permute(k["dims"])
    raise ValueError(op)


def torch_leaves(program: Program) -> dict[int, torch.Tensor]:
    return {
        i: torch.tensor(program.steps[i].value, dtype=torch.float64).requires_grad_(
            program.steps[i].requires_grad
        )
        for i in program.leaves()
    }


def run_torch(program: Program, leaves: dict[int, torch.Tensor]):
    values: list = []
    for i, s in enumerate(program.steps):
        values.append(leaves[i] if s.op == "leaf" else _apply_torch(s, values))
    loss = None
    for i, w in program.weights.items():
        term = (values[i] * torch.from_numpy(w)).sum()
        loss = term if loss is None else loss + term
    return values, loss


def clone_leaves(m, program: Program) -> dict:
    return {
        i: m.Tensor(program.steps[i].value.copy(), requires_grad=program.steps[i].requires_grad)
        for i in program.leaves()
    }


def _apply_clone(m, s: Step, values: list):
    a = [values[x] if isinstance(x, int) else x for x in s.inputs]
    k = s.kwargs
    if s.op == "maximum":
        return a[0].maximum(a[1]) if isinstance(a[0], m.Tensor) else m.maximum(a[0], a[1])
    if s.op in ("sum", "mean"):
        return getattr(a[0], s.op)(dim=k["dim"], keepdim=k["keepdim"])
    if s.op == "getitem":
        return a[0][k["index"]]
    if s.op == "expand":
        return a[0].expand(*k["shape"])
    return _generic(s.op, a, k, lambda t: t.relu())


def run_clone(m, program: Program, leaves: dict):
    values: list = []
    for i, s in enumerate(program.steps):
        values.append(leaves[i] if s.op == "leaf" else _apply_clone(m, s, values))
    loss = None
    for i, w in program.weights.items():
        term = (values[i] * m.Tensor(w)).sum()
        loss = term if loss is None else loss + term
    return values, loss


# -- drawing programs -------------------------------------------------------------------------------

SCALARS = [1.5, -0.5, 2.0, -3.0, 0.25]


def _ok(v: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(v))) and np.size(v) <= MAX_SIZE and np.all(np.abs(v) <= MAX_ABS)


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


@st.composite
def _related_shape(draw, shape: tuple) -> tuple:
    """A shape that broadcasts with `shape`: drop leading axes, squash some to 1, or add one."""
    kind = draw(st.sampled_from(["same", "ones", "drop", "add"]))
    if kind == "ones":
        return tuple(1 if draw(st.booleans()) else n for n in shape)
    if kind == "drop":
        return shape[draw(st.integers(0, len(shape))) :]
    if kind == "add" and len(shape) < 4:
        return (draw(st.integers(2, 3)), *shape)
    return shape


def _leaf(draw, rng: np.random.Generator, shape: tuple, kind: str = "any") -> Step:
    if kind == "positive":
        value = rng.uniform(0.5, 2.0, size=shape)
    else:
        value = rng.normal(size=shape)
    return Step(
        "leaf", value=np.asarray(value, dtype=np.float64), requires_grad=draw(st.booleans())
    )


@st.composite
def programs(draw, max_steps: int = 8) -> Program:
    """A random program: 1 to 3 leaves, then up to max_steps operations (see the module doc)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape_st = st.sampled_from([0, 1, 2, 2, 3, 3]).flatmap(
        lambda ndim: st.tuples(*[st.integers(1, 4)] * ndim)
    )
    steps: list[Step] = []
    values: list[np.ndarray] = []

    def add_step(step: Step) -> int:
        values.append(step.value if step.op == "leaf" else _apply_numpy(step, values))
        steps.append(step)
        return len(steps) - 1

    for j in range(draw(st.integers(1, 3))):
        leaf = _leaf(draw, rng, draw(shape_st), draw(st.sampled_from(["any", "positive"])))
        if j == 0:
            leaf.requires_grad = True  # so that the loss always requires grad
        add_step(leaf)

    for _ in range(draw(st.integers(1, max_steps))):
        x = draw(st.integers(0, len(values) - 1))
        op = draw(st.sampled_from(_valid_ops(values[x])))
        step = _draw_step(draw, rng, op, x, values, add_step)
        trial = _apply_numpy(step, values) if step is not None else None
        if trial is None or not _ok(trial):
            step = Step("neg", (x,))
        add_step(step)

    used = {x for s in steps for x in s.inputs if isinstance(x, int)}
    weights = {i: rng.normal(size=np.shape(values[i])) for i in range(len(steps)) if i not in used}
    return Program(steps, weights)


def _valid_ops(v: np.ndarray) -> list[str]:
    """The operations that can take v as their first input (getitem twice as likely)."""
    ops = ["add", "sub", "mul", "div", "maximum", "neg", "relu", "sum", "mean", "reshape"]
    ops += ["expand"]
    if np.min(v) > 0.1:
        ops.append("log")
    if np.max(v) < 3:
        ops.append("exp")
    if np.ndim(v) >= 1:
        ops += ["getitem", "getitem"]
    if np.ndim(v) >= 2:
        ops += ["permute", "matmul"]
    return ops


def _draw_step(draw, rng, op: str, x: int, values: list, add_step) -> Step | None:
    v = values[x]
    shape, ndim = np.shape(v), np.ndim(v)
    if op == "log":
        return Step("log", (x,)) if np.min(v) > 0.1 else None
    if op == "exp":
        return Step("exp", (x,)) if np.max(v) < 3 else None
    if op in ("neg", "relu"):
        return Step(op, (x,))
    if op in ("sum", "mean"):
        dim = None
        if ndim and draw(st.booleans()):
            dims = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim))
            dims = list({d % ndim: d for d in dims}.values())  # distinct axes
            dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else tuple(dims)
        return Step(op, (x,), {"dim": dim, "keepdim": draw(st.booleans())})
    if op == "reshape":
        size = int(np.size(v))
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        d = draw(st.sampled_from(divisors))
        options = [(-1,), (size,), (d, size // d), (d, -1), (1, *shape), (*shape, 1)]
        return Step("reshape", (x,), {"shape": draw(st.sampled_from(options))})
    if op == "permute":
        if ndim < 2:
            return None
        return Step("permute", (x,), {"dims": tuple(draw(st.permutations(range(ndim))))})
    if op == "expand":
        new = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, max(0, 4 - ndim)))))
        kept = tuple(
            draw(st.integers(1, 3)) if n == 1 else draw(st.sampled_from([n, -1])) for n in shape
        )
        return Step("expand", (x,), {"shape": new + kept})
    if op == "getitem":
        return Step("getitem", (x,), {"index": _draw_index(draw, shape)}) if ndim else None
    if op == "matmul":
        return _draw_matmul(draw, rng, x, values, add_step)
    # elementwise binary op with broadcasting: the partner is a node, a fresh leaf or a number
    kind = draw(st.sampled_from(["node", "leaf", "number"]))
    if kind == "node":
        fits = [i for i, w in enumerate(values) if _broadcasts(np.shape(w), shape)]
        if op == "div":
            fits = [i for i in fits if np.min(np.abs(values[i])) > 0.2] or [None]
        y = draw(st.sampled_from(fits))
        if y is None:
            return None
    elif kind == "leaf":
        leaf = _leaf(draw, rng, draw(_related_shape(shape)), "positive" if op == "div" else "any")
        y = add_step(leaf)
    else:
        y = draw(st.sampled_from(SCALARS))
    swap = draw(st.booleans())
    if op == "div" and swap and not np.min(np.abs(v)) > 0.2:
        swap = False
    return Step(op, (y, x) if swap else (x, y))


def _draw_index(draw, shape: tuple):
    n = shape[0]
    kinds = ["int", "slice", "array", "array2d"]
    if len(shape) >= 2:
        kinds += ["slice_int", "slice_array", "two_arrays"]
    kind = draw(st.sampled_from(kinds))

    def array(size_min=1):
        length = draw(st.integers(size_min, 5))
        return np.array([draw(st.integers(-n, n - 1)) for _ in range(length)], dtype=np.int64)

    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "slice":
        start = draw(st.integers(0, n - 1))
        return slice(start, draw(st.integers(start + 1, n)), draw(st.integers(1, 2)))
    if kind == "array":
        return array()
    if kind == "array2d":
        return np.array([[draw(st.integers(0, n - 1)) for _ in range(2)] for _ in range(2)])
    m = shape[1]
    if kind == "slice_int":
        return (slice(None), draw(st.integers(-m, m - 1)))
    if kind == "slice_array":
        cols = [draw(st.integers(0, m - 1)) for _ in range(draw(st.integers(1, 4)))]
        return (slice(None), np.array(cols, dtype=np.int64))
    length = draw(st.integers(1, 4))
    rows = np.array([draw(st.integers(0, n - 1)) for _ in range(length)], dtype=np.int64)
    cols = np.array([draw(st.integers(0, m - 1)) for _ in range(length)], dtype=np.int64)
    return (rows, cols)


def _draw_matmul(draw, rng, x: int, values: list, add_step) -> Step | None:
    shape = np.shape(values[x])
    if len(shape) < 2:
        return None
    left = draw(st.booleans())  # x @ y, or y @ x
    inner = shape[-1] if left else shape[-2]

    def fits(s: tuple) -> bool:
        if len(s) < 2 or not _broadcasts(s[:-2], shape[:-2]):
            return False
        return s[-2] == inner if left else s[-1] == inner

    nodes = [i for i, v in enumerate(values) if fits(np.shape(v))]
    if nodes and draw(st.booleans()):
        y = draw(st.sampled_from(nodes))
    else:
        batch = draw(_related_shape(shape[:-2]))
        other = draw(st.integers(1, 4))
        y_shape = (*batch, inner, other) if left else (*batch, other, inner)
        y = add_step(_leaf(draw, rng, y_shape))
    return Step("matmul", (x, y) if left else (y, x))


def first_program() -> Program:
    """A small fixed program that hypothesis tries first: broadcasting, reuse and a reduction."""
    r = np.random.default_rng(0)
    steps = [
        Step("leaf", value=r.normal(size=(2, 3)), requires_grad=True),
        Step("leaf", value=r.uniform(0.5, 2.0, size=(3,)), requires_grad=True),
        Step("mul", (0, 1)),  # broadcasts t1 over the rows of t0
        Step("add", (2, 0)),  # reuses t0
        Step("sum", (3,), {"dim": 1, "keepdim": False}),
        Step("log", (1,)),
    ]
    return Program(steps, {4: r.normal(size=(2,)), 5: r.normal(size=(3,))})
