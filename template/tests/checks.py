"""Checks shared by the graders. Each failure says which input, which shapes and by how much."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch


def describe(t: torch.Tensor) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"


PLAIN = (torch.Tensor, torch.nn.Parameter)


def plain_tensor(actual, expected: torch.Tensor, what: str) -> torch.Tensor:
    """`actual` as a plain tensor. Subclasses and look-alikes are refused: their own methods
    (`shape`, `isclose`, `__eq__`) could say anything."""
    if type(actual) not in PLAIN:
        pytest.fail(
            f"{what}: returned {type(actual).__name__}, expected a torch.Tensor {describe(expected)}"
            " (not a subclass)",
            pytrace=False,
        )
    return torch.Tensor.detach(actual)


def assert_close(
    actual, expected: torch.Tensor, *, what: str, atol: float = 1e-5, rtol: float = 1e-4
) -> None:
    """Compare with the reference and explain the difference in one short paragraph."""
    actual = plain_tensor(actual, expected, what)
    if actual.shape != expected.shape:
        pytest.fail(
            f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}", pytrace=False
        )
    if expected.is_floating_point() != actual.is_floating_point():
        pytest.fail(f"{what}: dtype {actual.dtype}, expected {expected.dtype}", pytrace=False)
    a, e = actual.double().cpu(), expected.detach().double().cpu()
    bad = ~torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    lines = [
        f"{what}: {int(bad.sum())} of {a.numel()} elements differ (atol {atol:g}, rtol {rtol:g})."
    ]
    nonfinite = int((~torch.isfinite(a) & torch.isfinite(e)).sum())
    if nonfinite:
        lines.append(
            f"{nonfinite} are NaN or inf where the reference is finite: is it numerically stable?"
        )
    both = torch.isfinite(a) & torch.isfinite(e) & bad
    if both.any():
        err = (a - e).abs()[both]
        rel = err / e.abs()[both].clamp(min=1e-12)
        lines.append(f"Max abs error {err.max():.3g}, max rel error {rel.max():.3g}.")
    first = tuple(int(i) for i in bad.nonzero()[0])
    lines.append(
        f"First at index {first}: got {a[first].item():.6g}, expected {e[first].item():.6g}."
    )
    pytest.fail(" ".join(lines), pytrace=False)


def assert_equal(actual, expected: torch.Tensor, *, what: str) -> None:
    """Exact comparison (integers, indices, booleans)."""
    assert_close(actual, expected, what=what, atol=0, rtol=0)


def python_lines(fn: Callable, *args, **kwargs) -> int:
    """How many lines of `mlab` code run for one call: a loop over elements grows with the input."""
    import mlab

    root = str(Path(mlab.__file__).parent)
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(root) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return count


def assert_vectorized(fn: Callable, small: tuple, large: tuple) -> None:
    """The same number of Python lines runs for a small and a 10x larger input."""
    n_small, n_large = python_lines(fn, *small), python_lines(fn, *large)
    if n_large > n_small:
        pytest.fail(
            f"{fn.__name__}: {n_small} lines of Python ran for a small input and {n_large} for a larger "
            "one. Looping over elements in Python? Use a vectorized tensor operation instead.",
            pytrace=False,
        )
