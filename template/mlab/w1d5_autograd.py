"""Day w1d5_autograd: a small PyTorch clone with backpropagation.

A `Tensor` wraps a NumPy array. Every operation on Tensors that require grad leaves a `Recipe`
on its output: which NumPy function made it, from which arguments. Those recipes form the
computational graph. `backprop` walks the graph from the output back to the leaves, calling one
backward function per operation: a vector-Jacobian product (VJP) that turns the gradient of the
loss with respect to an operation's output into gradients with respect to its inputs. On top of
that you build `Module`, `Linear`, `MLP`, `cross_entropy` and `SGD`, and train on digits.
Read docs/w1d5_autograd.md for the ideas.

Conventions used throughout (the same as PyTorch's):
- a backward function `op_back(grad_out, out, *args, **kwargs)` gets the gradient of the loss with
  respect to the output `out = op(*args, **kwargs)` and returns a tuple with one gradient per
  positional argument of `op`, each of that argument's shape (arguments may be Python numbers:
  their shape is `()`, and their gradient is ignored). It must not modify `grad_out` in place.
- `x.grad` is only filled on leaf tensors that require grad, and backward *adds* to it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from jaxtyping import Float, Int

Arr = np.ndarray
Node = TypeVar("Node", bound=Hashable)

# -- backward functions (vector-Jacobian products) on NumPy arrays ------------------------------


def unbroadcast(grad: Arr, shape: tuple[int, ...]) -> Arr:
    """Sum `grad` down to `shape`: the backward of broadcasting an array of `shape` to grad.shape.

    Broadcasting adds leading axes and stretches axes of size 1. An input element that was copied
    k times received k gradients, which add up: sum over the added leading axes, and (keeping the
    axis) over every axis where `shape` has a 1 and grad does not. torch: `grad.sum_to_size(shape)`.
    """
    raise NotImplementedError("unbroadcast: see docs/w1d5_autograd.md#unbroadcast")


def log_back(grad_out: Arr, out: Arr, x: Arr) -> tuple[Arr]:
    """out = log(x): d out / d x = 1 / x, elementwise."""
    raise NotImplementedError("log_back: see docs/w1d5_autograd.md#log_back")


def exp_back(grad_out: Arr, out: Arr, x: Arr) -> tuple[Arr]:
    """out = exp(x): d out / d x = exp(x), which is `out` (no need to compute it again)."""
    raise NotImplementedError("exp_back: see docs/w1d5_autograd.md#exp_back")


def neg_back(grad_out: Arr, out: Arr, x: Arr) -> tuple[Arr]:
    """out = -x."""
    raise NotImplementedError("neg_back: see docs/w1d5_autograd.md#neg_back")


def add_back(grad_out: Arr, out: Arr, x: Arr | float, y: Arr | float) -> tuple[Arr, Arr]:
    """out = x + y, with broadcasting: each input gets grad_out, summed to its own shape."""
    raise NotImplementedError("add_back: see docs/w1d5_autograd.md#add_back")


def sub_back(grad_out: Arr, out: Arr, x: Arr | float, y: Arr | float) -> tuple[Arr, Arr]:
    """out = x - y, with broadcasting."""
    raise NotImplementedError("sub_back: see docs/w1d5_autograd.md#sub_back")


def mul_back(grad_out: Arr, out: Arr, x: Arr | float, y: Arr | float) -> tuple[Arr, Arr]:
    """out = x * y, with broadcasting: d out / d x = y and d out / d y = x."""
    raise NotImplementedError("mul_back: see docs/w1d5_autograd.md#mul_back")


def div_back(grad_out: Arr, out: Arr, x: Arr | float, y: Arr | float) -> tuple[Arr, Arr]:
    """out = x / y, with broadcasting: d out / d x = 1 / y and d out / d y = -x / y^2."""
    raise NotImplementedError("div_back: see docs/w1d5_autograd.md#div_back")


def matmul_back(
    grad_out: Float[Arr, "*batch n m"], out: Float[Arr, "*batch n m"], a: Arr, b: Arr
) -> tuple[Arr, Arr]:
    """out = a @ b for a: (*batch_a, n, k) and b: (*batch_b, k, m), both at least 2-D.

    out[..., i, j] = sum_l a[..., i, l] b[..., l, j], so grad_a = grad_out @ b^T and
    grad_b = a^T @ grad_out (transposing the last two axes); the batch axes broadcast, so sum
    each gradient back to its input's shape.
    """
    raise NotImplementedError("matmul_back: see docs/w1d5_autograd.md#matmul_back")


def sum_back(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    *,
    dim: int | tuple[int, ...] | None = None,
    keepdim: bool = False,
) -> tuple[Arr]:
    """out = x.sum(dim, keepdim): every summed element gets the gradient of its sum.

    Without keepdim, put the summed axes back (size 1) first, then broadcast to x's shape.
    `dim` may be None (all axes), an int or a tuple, and negative.
    """
    raise NotImplementedError("sum_back: see docs/w1d5_autograd.md#sum_back")


def mean_back(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    *,
    dim: int | tuple[int, ...] | None = None,
    keepdim: bool = False,
) -> tuple[Arr]:
    """out = x.mean(dim, keepdim): like sum_back, divided by how many elements each mean has."""
    raise NotImplementedError("mean_back: see docs/w1d5_autograd.md#mean_back")


def reshape_back(grad_out: Arr, out: Arr, x: Arr, *, shape: tuple[int, ...]) -> tuple[Arr]:
    """out = x.reshape(shape): the same elements in the same order, so reshape back."""
    raise NotImplementedError("reshape_back: see docs/w1d5_autograd.md#reshape_back")


def permute_back(grad_out: Arr, out: Arr, x: Arr, *, dims: tuple[int, ...]) -> tuple[Arr]:
    """out = x.permute(dims), i.e. out's axis i is x's axis dims[i] (dims: a permutation of
    range(x.ndim)). Undo it with the inverse permutation."""
    raise NotImplementedError("permute_back: see docs/w1d5_autograd.md#permute_back")


def expand_back(grad_out: Arr, out: Arr, x: Arr, *, shape: tuple[int, ...]) -> tuple[Arr]:
    """out = x.expand(shape): broadcasting made explicit."""
    raise NotImplementedError("expand_back: see docs/w1d5_autograd.md#expand_back")


def getitem_back(grad_out: Arr, out: Arr, x: Arr, *, index: Any) -> tuple[Arr]:
    """out = x[index] (ints, slices, integer arrays). Scatter grad_out into zeros of x's shape.

    An element picked twice (an integer array with repeats) gets both gradients: `g[index] +=`
    does NOT add twice; `np.add.at` does.
    """
    raise NotImplementedError("getitem_back: see docs/w1d5_autograd.md#getitem_back")


def maximum_back(grad_out: Arr, out: Arr, x: Arr | float, y: Arr | float) -> tuple[Arr, Arr]:
    """out = maximum(x, y), with broadcasting. The gradient goes to the larger input; where
    x == y it is split in half between them (as PyTorch does)."""
    raise NotImplementedError("maximum_back: see docs/w1d5_autograd.md#maximum_back")


def relu_back(grad_out: Arr, out: Arr, x: Arr) -> tuple[Arr]:
    """out = max(x, 0). At x == 0 the gradient is 0 (PyTorch's choice)."""
    raise NotImplementedError("relu_back: see docs/w1d5_autograd.md#relu_back")


def backward_by_hand(
    a: Float[Arr, "n m"], b: Float[Arr, " m"], c: Float[Arr, "n 1"]
) -> tuple[Arr, Arr, Arr]:
    """Gradients of L = sum(log(a * b) * c) with respect to a, b and c, by chaining the backward
    functions above by hand (before `backprop` does it for any graph):

        d = a * b        (n, m): b broadcasts over the rows
        e = log(d)       (n, m)
        f = e * c        (n, m): c broadcasts over the columns
        L = f.sum()      ()

    Run the forward pass, then the backward functions in reverse order starting from
    dL/dL = 1, each turning the gradient of its output into gradients of its inputs. Return
    (dL/da, dL/db, dL/dc), each of its input's shape.
    """
    raise NotImplementedError("backward_by_hand: see docs/w1d5_autograd.md#backward_by_hand")


# -- Tensor, recipes and forward operations ------------------------------------------------------


@dataclass
class Recipe:
    """How a Tensor was computed: `func(*args, **kwargs)`, with `func` a NumPy-level function."""

    func: Callable  # the NumPy forward function; BACK_FUNCS[func] is its backward
    args: tuple  # its positional arguments, Tensors replaced by their arrays
    kwargs: dict[str, Any]  # its keyword arguments (dim, shape, index...)
    parents: dict[int, Tensor]  # argument position -> the input Tensor there that requires grad


class Tensor:
    """A NumPy array plus autograd state: `requires_grad`, `grad` and the `recipe` that made it."""

    __array_ufunc__ = None  # makes `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy's loop

    def __init__(self, array: Any, requires_grad: bool = False):
        self.array: Arr = np.asarray(array)
        if requires_grad and not np.issubdtype(self.array.dtype, np.inexact):
            raise RuntimeError(  # as torch: integer gradients make no sense
                f"only Tensors of floating point dtype can require gradients, not {self.array.dtype}"
            )
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.recipe: Recipe | None = None

    @property
    def is_leaf(self) -> bool:
        """As in PyTorch: a tensor that does not require grad is a leaf, and so is one the user
        created (no recipe). Results of tracked operations are not leaves."""
        raise NotImplementedError("Tensor.is_leaf: see docs/w1d5_autograd.md#tensor")

    def backward(self, end_grad: Tensor | Arr | None = None) -> None:
        """Accumulate d self / d leaf into `leaf.grad` for every leaf that requires grad."""
        backprop(self, end_grad)

    # -- plain array facts ---------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __len__(self) -> int:
        return len(self.array)

    def numpy(self) -> Arr:
        return self.array

    def item(self) -> float:
        return self.array.item()

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.array, threshold=20, precision=4)}{grad})"

    # -- operations (each a wrapped NumPy function, defined below) ------------------------------

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return neg(self)

    def __getitem__(self, index):
        if isinstance(index, tuple):
            index = tuple(i.array if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, Tensor):
            index = index.array
        return getitem(self, index=index)

    def log(self) -> Tensor:
        return log(self)

    def exp(self) -> Tensor:
        return exp(self)

    def relu(self) -> Tensor:
        return relu(self)

    def maximum(self, other) -> Tensor:
        return maximum(self, other)

    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return reduce_sum(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return reduce_mean(self, dim=dim, keepdim=keepdim)

    def reshape(self, *shape) -> Tensor:
        return reshape(self, shape=_dims(shape))

    def permute(self, *dims) -> Tensor:
        return permute(self, dims=_dims(dims))

    def expand(self, *shape) -> Tensor:
        return expand(self, shape=_dims(shape))

    @property
    def T(self) -> Tensor:
        """Transpose of a 2-D tensor."""
        return permute(self, dims=(1, 0))


def _dims(args: tuple) -> tuple[int, ...]:
    """`f(2, 3)` and `f((2, 3))` both mean the shape (2, 3)."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], tuple | list) else args


_grad_tracking_enabled = True


def grad_tracking_enabled() -> bool:
    """False inside `with no_grad():`."""
    return _grad_tracking_enabled


class no_grad:
    """`with no_grad(): ...` runs operations without recording recipes, as `torch.no_grad`.

    On exit, restore whatever was in force before (blocks may nest), even after an exception.
    """

    def __enter__(self) -> None:
        raise NotImplementedError("no_grad.__enter__: see docs/w1d5_autograd.md#no_grad")

    def __exit__(self, *exc_info) -> None:
        raise NotImplementedError("no_grad.__exit__: see docs/w1d5_autograd.md#no_grad")


def wrap_forward_fn(numpy_func: Callable, is_differentiable: bool = True) -> Callable[..., Tensor]:
    """Lift a NumPy function to one on Tensors that records how its output was made.

    The returned `tensor_func(*args, **kwargs)` calls `numpy_func` with every Tensor argument
    replaced by its array and wraps the result in a new Tensor. The output requires grad (and gets
    a Recipe whose `parents` are the positions of Tensor arguments that require grad) exactly when
    the function is differentiable, grad tracking is on, and at least one such parent exists.
    """

    def tensor_func(*args, **kwargs) -> Tensor:
        raise NotImplementedError("wrap_forward_fn.tensor_func: see docs/w1d5_autograd.md#wrap_forward_fn")

    tensor_func.__name__ = tensor_func.__qualname__ = getattr(numpy_func, "__name__", "op")
    return tensor_func


# NumPy-level forwards that need a small adapter (PyTorch's argument names and semantics).


def _sum(x: Arr, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Arr:
    return np.sum(x, axis=dim if not isinstance(dim, list) else tuple(dim), keepdims=keepdim)


def _mean(x: Arr, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Arr:
    return np.mean(x, axis=dim if not isinstance(dim, list) else tuple(dim), keepdims=keepdim)


def _reshape(x: Arr, shape: tuple[int, ...]) -> Arr:
    return np.reshape(x, shape)


def _permute(x: Arr, dims: tuple[int, ...]) -> Arr:
    return np.transpose(x, dims)


def _expand(x: Arr, shape: tuple[int, ...]) -> Arr:
    """torch's expand: new axes in front, size-1 axes stretched; -1 keeps an axis as it is."""
    offset = len(shape) - np.ndim(x)
    full = tuple(np.shape(x)[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return np.broadcast_to(x, full)


def _getitem(x: Arr, index: Any) -> Arr:
    return x[index]


def _relu(x: Arr) -> Arr:
    return np.maximum(x, 0)


log = wrap_forward_fn(np.log)
exp = wrap_forward_fn(np.exp)
neg = wrap_forward_fn(np.negative)
add = wrap_forward_fn(np.add)
sub = wrap_forward_fn(np.subtract)
mul = wrap_forward_fn(np.multiply)
div = wrap_forward_fn(np.true_divide)
matmul = wrap_forward_fn(np.matmul)
reduce_sum = wrap_forward_fn(_sum)  # x.sum(dim, keepdim)
reduce_mean = wrap_forward_fn(_mean)  # x.mean(dim, keepdim)
reshape = wrap_forward_fn(_reshape)  # reshape(x, shape=...)
permute = wrap_forward_fn(_permute)  # permute(x, dims=...)
expand = wrap_forward_fn(_expand)  # expand(x, shape=...)
getitem = wrap_forward_fn(_getitem)  # getitem(x, index=...), i.e. x[index]
maximum = wrap_forward_fn(np.maximum)
relu = wrap_forward_fn(_relu)

# Which backward function undoes which NumPy forward function (the recipe's `func`).
BACK_FUNCS: dict[Callable, Callable[..., tuple]] = {
    np.log: log_back,
    np.exp: exp_back,
    np.negative: neg_back,
    np.add: add_back,
    np.subtract: sub_back,
    np.multiply: mul_back,
    np.true_divide: div_back,
    np.matmul: matmul_back,
    _sum: sum_back,
    _mean: mean_back,
    _reshape: reshape_back,
    _permute: permute_back,
    _expand: expand_back,
    _getitem: getitem_back,
    np.maximum: maximum_back,
    _relu: relu_back,
}


# -- walking the graph ---------------------------------------------------------------------------


def topological_sort(node: Node, get_children: Callable[[Node], Iterable[Node]]) -> list[Node]:
    """Every node reachable from `node` (itself included) exactly once, each after all of its
    children: `node` comes last. Raise ValueError if the graph has a cycle.

    Graphs may be thousands of nodes deep (a long chain of operations), deeper than Python's
    recursion limit: keep your own stack rather than recursing.
    """
    raise NotImplementedError("topological_sort: see docs/w1d5_autograd.md#topological_sort")


def sorted_computational_graph(tensor: Tensor) -> list[Tensor]:
    """`tensor` and every Tensor it was computed from through recipes, `tensor` first: each
    tensor comes before the tensors it was computed from."""

    def get_parents(t: Tensor) -> Iterable[Tensor]:
        return t.recipe.parents.values() if t.recipe is not None else ()

    return topological_sort(tensor, get_parents)[::-1]


def backprop(end_node: Tensor, end_grad: Tensor | Arr | None = None) -> None:
    """Accumulate d end_node / d leaf (weighted by end_grad) into `leaf.grad` for every leaf of
    end_node's graph that requires grad, as `end_node.backward(end_grad)` does in PyTorch.

    - end_grad defaults to 1 for a one-element end_node; otherwise, or if end_node does not
      require grad, raise RuntimeError (PyTorch does too). An end_grad given must have
      end_node's shape (no broadcasting): raise RuntimeError otherwise, as PyTorch does.
    - Visit the graph in topological order (end_node first), keeping a dict from each Tensor to
      its gradient so far; call the node's backward function once all of its gradient is in, and
      add what it returns into the dict entries of the node's parents (never in place).
    - Only leaves that require grad get `.grad`: a Tensor (requires_grad False) of the leaf's
      shape and dtype, added to any gradient already there. Other tensors keep `.grad` None.
    """
    raise NotImplementedError("backprop: see docs/w1d5_autograd.md#backprop")


# -- neural networks -----------------------------------------------------------------------------


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable; requires grad by default."""

    def __init__(self, tensor: Tensor | Arr, requires_grad: bool = True):
        super().__init__(tensor.array if isinstance(tensor, Tensor) else tensor, requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models, as `torch.nn.Module`: assigning a Parameter or a Module
    to an attribute registers it; `parameters()` finds them all."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})  # name -> Parameter, in assignment order
        object.__setattr__(self, "_modules", {})  # name -> Module, in assignment order

    def __setattr__(self, name: str, value: Any) -> None:
        """Register `value` in `_parameters` or `_modules` under `name` (dropping whatever was
        registered under that name before), then set the attribute as usual."""
        raise NotImplementedError("Module.__setattr__: see docs/w1d5_autograd.md#module")

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """This module's parameters in assignment order, then (if recurse) its submodules', each
        Parameter only once even if it is shared: the same order as PyTorch."""
        raise NotImplementedError("Module.parameters: see docs/w1d5_autograd.md#module")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward method")

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({name}): {m!r}" for name, m in self._modules.items())
        return f"{type(self).__name__}({inner}\n)" if inner else f"{type(self).__name__}()"


class Linear(Module):
    """y = x W^T + b, with W: (out_features, in_features) and b: (out_features,), as nn.Linear.

    Both start uniform in [-1/sqrt(in_features), 1/sqrt(in_features)] (PyTorch's default),
    float32, drawn from `rng` (weight first, then bias).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ):
        raise NotImplementedError("Linear.__init__: see docs/w1d5_autograd.md#linear")

    def forward(
        self, x: Float[Tensor, "*batch in_features"]
    ) -> Float[Tensor, "*batch out_features"]:
        raise NotImplementedError("Linear.forward: see docs/w1d5_autograd.md#linear")


class MLP(Module):
    """fc1 -> relu -> fc2 -> relu -> fc3: in_features -> hidden -> hidden -> out_features.

    Create fc1, fc2, fc3 in that order with the same `rng`.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int,
        rng: np.random.Generator | None = None,
    ):
        raise NotImplementedError("MLP.__init__: see docs/w1d5_autograd.md#mlp")

    def forward(self, x: Float[Tensor, "b in_features"]) -> Float[Tensor, "b out_features"]:
        raise NotImplementedError("MLP.forward: see docs/w1d5_autograd.md#mlp")


def cross_entropy(
    logits: Float[Tensor, "n c"], targets: Int[Arr, " n"] | Tensor
) -> Float[Tensor, ""]:
    """Mean over the batch of -log softmax(logits)[target], built from Tensor operations so that
    it has gradients, and stable for large logits (subtract each row's max, as a constant)."""
    raise NotImplementedError("cross_entropy: see docs/w1d5_autograd.md#cross_entropy")


class SGD:
    """Stochastic gradient descent with momentum, as torch.optim.SGD (no dampening, no
    weight decay): b <- momentum * b + g (b = g on the first step), then p <- p - lr * b."""

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.buffers: list[Arr | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Set every parameter's grad to None (PyTorch's default)."""
        raise NotImplementedError("SGD.zero_grad: see docs/w1d5_autograd.md#sgd")

    def step(self) -> None:
        """Update each parameter that has a grad, in place (`p.array`); skip those without."""
        raise NotImplementedError("SGD.step: see docs/w1d5_autograd.md#sgd")


# -- training on digits --------------------------------------------------------------------------


def load_digits_data(
    n_test: int = 297, seed: int = 0
) -> tuple[Float[Arr, "n 64"], Int[Arr, " n"], Float[Arr, "m 64"], Int[Arr, " m"]]:
    """scikit-learn's 8x8 digits (1797 images, bundled offline), pixels scaled to [0, 1], shuffled
    with `seed` and split into (x_train, y_train, x_test, y_test) with n_test test images."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits data set needs scikit-learn: pip install scikit-learn"
        ) from None
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def train_epoch(
    model: Module,
    optimizer: SGD,
    x: Float[Arr, "n d"],
    y: Int[Arr, " n"],
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over (x, y) in a random order (`rng.permutation(n)`), in minibatches of
    batch_size (the last one may be smaller): zero_grad, forward, cross_entropy, backward, step.
    Returns the mean training loss over the examples."""
    raise NotImplementedError("train_epoch: see docs/w1d5_autograd.md#train_epoch")


def evaluate(model: Module, x: Float[Arr, "n d"], y: Int[Arr, " n"]) -> float:
    """Fraction of examples whose largest logit is the label, computed under no_grad."""
    raise NotImplementedError("evaluate: see docs/w1d5_autograd.md#evaluate")
