"""Graders for day w1d6_kernels: Numba CUDA and Triton kernels against PyTorch.

Without a GPU the kernels run in Numba's CUDA simulator and Triton's interpreter on small odd
shapes (the helpers module sets that up before the day's modules are imported); the benchmarks
then skip with "no GPU: correctness only". On a CUDA machine the same tests run compiled, and the
`bench` tests time every exercise against PyTorch (cohort/grading/bench.py).

Every call writes into an `out` surrounded by guard values (writes outside it fail), the grader
watches that the module-level kernel is launched (and that the output is wrong when the launch
does nothing), calls again with new values in the same input tensors (a cache keyed on addresses
fails), and compares in float64 with tolerances that float16 arithmetic cannot meet.
Run one exercise with `pytest tests/test_w1d6_kernels.py -k softmax_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
import w1d6_kernels_helpers as h  # first: picks the simulators before numba and triton load
from checks import assert_close
from mlab.w1d6_kernels import numba_kernels as nb
from mlab.w1d6_kernels import triton_kernels as tk

points = pytest.mark.points
needs_gpu = pytest.mark.skipif(h.SIMULATED, reason="no GPU: correctness only")


@pytest.fixture(autouse=True)
def _racecheck():
    """In the simulator, every shared-memory access is checked for races (a missing syncthreads)."""
    with h.racecheck():
        yield


def randn(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(*shape, device=h.DEVICE) * scale + shift


def randint(high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape, device=h.DEVICE)


@dataclass(frozen=True)
class Exercise:
    """One wrapper + kernel pair: how to make inputs, the float64 answer, tolerances, benchmark."""

    key: str  # "numba.add"
    module: ModuleType
    kernel: str  # the module-level kernel the wrapper launches
    make: Callable[[tuple], tuple]  # shape -> arguments before `out`
    expected: Callable[..., torch.Tensor]  # arguments -> float64 (or integer) answer
    small: tuple  # shape for the cheat tests
    tol: Callable[[tuple], tuple[float, float]] = lambda shape: (1e-6, 1e-5)  # (atol, rtol)
    reference: Callable[..., torch.Tensor] | None = None  # what PyTorch runs, for the benchmark
    bytes_moved: Callable[[tuple], float] | None = None  # the least memory traffic of one call
    bench_shapes: tuple = ()

    @property
    def fn(self) -> Callable:
        return getattr(self.module, self.key.split(".")[1])

    def describe(self, args: tuple) -> str:
        parts = [f"{tuple(a.shape)}" if isinstance(a, torch.Tensor) else repr(a) for a in args]
        return f"{self.key}({', '.join(parts)})"


def refill(args: tuple, fresh: tuple) -> None:
    """New values into the same tensors: the addresses stay, the contents change."""
    for old, new in zip(args, fresh, strict=True):
        if isinstance(old, torch.Tensor):
            old.copy_(new)


def out_dtype(expected: torch.Tensor) -> torch.dtype:
    return torch.float32 if expected.is_floating_point() else torch.int32


def run_checked(
    ex: Exercise, shape: tuple, args: tuple | None = None, note: str = ""
) -> h.LaunchSpy:
    """Call the exercise into a guarded `out` while watching its kernel; check everything."""
    args = ex.make(shape) if args is None else args
    expected = ex.expected(*args)
    what = ex.describe(args) + note
    guarded = h.Guarded(tuple(expected.shape), out_dtype(expected))
    with h.spying(ex.module, ex.kernel) as spy:
        got = ex.fn(*args, out=guarded.out)
    guarded.check(what)
    if not spy.configs:
        pytest.fail(
            f"{what}: `{ex.kernel}` was never launched. Launch it by its module-level name, "
            f"`{ex.kernel}[...](...)`: the grader watches that name.",
            pytrace=False,
        )
    guarded.check_returned(got, what)
    atol, rtol = ex.tol(shape)
    assert_close(got, expected, what=what, atol=atol, rtol=rtol)
    return spy


def sum_tol(shape: tuple) -> tuple[float, float]:
    """Sums of n standard normals: fp32 rounding drifts by ~eps * n at worst (a long serial sum);
    fp16 inputs alone are off by ~2e-4 * sqrt(n), 10x more for the sizes graded on CPU."""
    n = shape[-1]
    return 2e-5 * math.sqrt(n) + 1e-7 * n, 1e-5


def matmul_tol(shape: tuple) -> tuple[float, float]:
    m, k, n = shape
    return 2e-6 * k, 1e-5


def padded_block_sums(x: torch.Tensor) -> torch.Tensor:
    blocks = -(-x.shape[0] // nb.THREADS)
    return F.pad(x.double(), (0, blocks * nb.THREADS - x.shape[0])).view(blocks, nb.THREADS).sum(1)


def gather_args(shape: tuple) -> tuple:
    n, d, k = shape
    idx = randint(n, k)
    idx[0], idx[-1] = n - 1, 0  # both ends of x
    return randn(n, d), idx


def histogram_args(shape: tuple) -> tuple:
    n, bins = shape
    return randint(bins, n), bins


def layernorm_args(shape: tuple) -> tuple:
    m, n = shape
    return randn(m, n, scale=2.0, shift=0.5), randn(n), randn(n)


F32 = 4  # bytes


EXERCISES = [
    Exercise(
        "numba.add", nb, "add_kernel", lambda s: (randn(*s), randn(*s)),
        lambda x, y: x.double() + y.double(), (129,),
        reference=torch.add, bytes_moved=lambda s: 3 * F32 * s[0], bench_shapes=((2**24,),),
    ),
    Exercise(
        "numba.scale_add", nb, "scale_add_kernel", lambda s: (0.75, randn(*s), randn(*s)),
        lambda a, x, y: a * x.double() + y.double(), (129,),
        reference=lambda a, x, y: torch.add(y, x, alpha=a), bytes_moved=lambda s: 3 * F32 * s[0],
        bench_shapes=((2**24,),),
    ),
    Exercise(
        "numba.gather", nb, "gather_kernel", gather_args, lambda x, idx: x.double()[idx],
        (127, 33, 13), reference=lambda x, idx: x[idx],
        bytes_moved=lambda s: 2 * F32 * s[1] * s[2] + 8 * s[2], bench_shapes=((50257, 768, 4096),),
    ),
    Exercise(
        "numba.sum_rows", nb, "sum_rows_kernel", lambda s: (randn(*s),),
        lambda x: x.double().sum(1), (33, 127), tol=sum_tol, reference=lambda x: x.sum(1),
        bytes_moved=lambda s: F32 * s[0] * (s[1] + 1), bench_shapes=((4096, 4096), (65536, 64)),
    ),
    Exercise(
        "numba.block_sum", nb, "block_sum_kernel", lambda s: (randn(*s),), padded_block_sums,
        (129,), tol=lambda s: sum_tol((nb.THREADS,)),
        reference=lambda x: x.view(-1, nb.THREADS).sum(1),
        bytes_moved=lambda s: F32 * s[0] * (1 + 1 / nb.THREADS), bench_shapes=((2**24,),),
    ),
    Exercise(
        "numba.sum_all", nb, "block_sum_kernel", lambda s: (randn(*s),),
        lambda x: x.double().sum(), (129,), tol=sum_tol, reference=torch.sum,
        bytes_moved=lambda s: F32 * s[0], bench_shapes=((2**24,),),
    ),
    Exercise(
        "numba.softmax_rows", nb, "softmax_rows_kernel", lambda s: (randn(*s, scale=3.0),),
        lambda x: torch.softmax(x.double(), -1), (1, 129), tol=lambda s: (1e-7, 1e-5),
        reference=lambda x: torch.softmax(x, -1), bytes_moved=lambda s: 2 * F32 * s[0] * s[1],
        bench_shapes=((4096, 1024), (1024, 8192)),
    ),
    Exercise(
        "numba.histogram", nb, "histogram_kernel", histogram_args,
        lambda v, bins: torch.bincount(v, minlength=bins), (129, 5), tol=lambda s: (0.0, 0.0),
        reference=lambda v, bins: torch.bincount(v, minlength=bins),
        bytes_moved=lambda s: 8 * s[0] + F32 * s[1], bench_shapes=((2**24, 256),),
    ),
    Exercise(
        "numba.matmul", nb, "matmul_kernel", lambda s: (randn(s[0], s[1]), randn(s[1], s[2])),
        lambda a, b: a.double() @ b.double(), (5, 9, 40), tol=matmul_tol, reference=torch.matmul,
        bytes_moved=lambda s: F32 * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2]),
        bench_shapes=((1024, 1024, 1024), (2048, 2048, 2048)),
    ),
    Exercise(
        "triton.add", tk, "add_kernel", lambda s: (randn(*s), randn(*s)),
        lambda x, y: x.double() + y.double(), (1025,),
        reference=torch.add, bytes_moved=lambda s: 3 * F32 * s[0], bench_shapes=((2**24,),),
    ),
    Exercise(
        "triton.softmax", tk, "softmax_kernel", lambda s: (randn(*s, scale=3.0),),
        lambda x: torch.softmax(x.double(), -1), (3, 129), tol=lambda s: (1e-7, 1e-5),
        reference=lambda x: torch.softmax(x, -1), bytes_moved=lambda s: 2 * F32 * s[0] * s[1],
        bench_shapes=((4096, 1024), (4096, 8192)),
    ),
    Exercise(
        "triton.layernorm", tk, "layernorm_kernel", layernorm_args,
        lambda x, w, b: F.layer_norm(x.double(), x.shape[-1:], w.double(), b.double(), 1e-5),
        (3, 129), tol=lambda s: (1e-5, 1e-5),
        reference=lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, 1e-5),
        bytes_moved=lambda s: F32 * (2 * s[0] * s[1] + 2 * s[1]),
        bench_shapes=((4096, 1024), (4096, 8192)),
    ),
    Exercise(
        "triton.matmul", tk, "matmul_kernel", lambda s: (randn(s[0], s[1]), randn(s[1], s[2])),
        lambda a, b: a.double() @ b.double(), (33, 65, 127), tol=matmul_tol,
        reference=torch.matmul, bytes_moved=lambda s: F32 * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2]),
        bench_shapes=((1024, 1024, 1024), (2048, 2048, 2048)),
    ),
]  # fmt: skip
EX = {ex.key: ex for ex in EXERCISES}


# -- Numba: elementwise --------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("n", [127, 129, 1023, 1025])
def test_add(n):
    run_checked(EX["numba.add"], (n,))


@points(1)
@pytest.mark.parametrize("n", [127, 1025])
def test_scale_add(n):
    run_checked(EX["numba.scale_add"], (n,))


@points(2)
def test_scale_add_grid_stride(monkeypatch):
    """With MAX_BLOCKS = 2, 1025 elements need a grid-stride loop: 256 threads, 5 rounds."""
    monkeypatch.setattr(nb, "MAX_BLOCKS", 2)
    spy = run_checked(EX["numba.scale_add"], (1025,), note=" with MAX_BLOCKS = 2")
    blocks = [math.prod(b) if isinstance(b, tuple) else b for b, *_ in spy.configs]
    if max(blocks) > 2:
        pytest.fail(
            f"scale_add launched {max(blocks)} blocks with MAX_BLOCKS = 2: launch at most "
            "MAX_BLOCKS blocks and let each thread loop with stride cuda.gridsize(1)",
            pytrace=False,
        )


@points(1)
@pytest.mark.parametrize("shape", [(1025, 9, 17), (127, 33, 13)], ids=str)
def test_gather(shape):
    run_checked(EX["numba.gather"], shape)


# -- Numba: reductions ---------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("shape", [(129, 127), (3, 1025)], ids=str)
def test_sum_rows(shape):
    run_checked(EX["numba.sum_rows"], shape)


@points(2)
@pytest.mark.parametrize("n", [127, 1025])
def test_block_sum(n):
    run_checked(EX["numba.block_sum"], (n,))


@points(1)
@pytest.mark.parametrize("n", [129, 1025])
def test_sum_all(n):
    spy = run_checked(EX["numba.sum_all"], (n,))
    if len(spy.configs) < 2:
        pytest.fail(
            f"sum_all({n}): one launch of block_sum_kernel cannot sum {n} > THREADS elements; "
            "launch block_sum again on the partial sums",
            pytrace=False,
        )


@points(2)
@pytest.mark.parametrize("shape", [(3, 129), (2, 1025)], ids=str)
def test_softmax_rows(shape):
    run_checked(EX["numba.softmax_rows"], shape)


@points(1)
def test_softmax_rows_stable():
    """Rows around +-1000: exp overflows unless the row max is subtracted first."""
    x = randn(2, 129, scale=3.0) + torch.tensor([[1000.0], [-1000.0]], device=h.DEVICE)
    run_checked(EX["numba.softmax_rows"], (2, 129), args=(x,), note=" with values near +-1000")


# -- Numba: atomics ------------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("shape", [(1025, 7), (127, 129)], ids=str)
def test_histogram(shape):
    run_checked(EX["numba.histogram"], shape)


@points(2)
def test_histogram_is_atomic():
    """1025 values in 2 bins: hundreds of threads increment the same counter. Simulated threads
    are made to take turns between read and write, so a plain `+=` loses counts as on a GPU."""
    with h.interleaved_threads():
        run_checked(EX["numba.histogram"], (1025, 2), note=" (many threads per bin: atomics?)")


# -- Numba: tiled matmul -------------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("shape", [(17, 20, 9), (5, 9, 40)], ids=str)
def test_matmul(shape):
    run_checked(EX["numba.matmul"], shape)


# -- Triton ---------------------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("n", [127, 129, 1023, 1025])
def test_triton_add(n):
    run_checked(EX["triton.add"], (n,))


@points(1)
@pytest.mark.parametrize("shape", [(5, 127), (3, 1025), (4, 1023)], ids=str)
def test_triton_softmax(shape):
    run_checked(EX["triton.softmax"], shape)


@points(1)
def test_triton_softmax_stable():
    x = randn(2, 129, scale=3.0) + torch.tensor([[1000.0], [-1000.0]], device=h.DEVICE)
    run_checked(EX["triton.softmax"], (2, 129), args=(x,), note=" with values near +-1000")


@points(2)
@pytest.mark.parametrize("shape", [(7, 127), (3, 1025)], ids=str)
def test_triton_layernorm(shape):
    run_checked(EX["triton.layernorm"], shape)


@points(2)
@pytest.mark.parametrize("shape", [(127, 129, 33), (33, 65, 127)], ids=str)
def test_triton_matmul(shape):
    run_checked(EX["triton.matmul"], shape)


@points(1)
def test_triton_matmul_strided():
    """a is a transposed view (column-major): the kernel must use the strides it is given."""
    a, b = randn(65, 33).T, randn(65, 127)
    run_checked(EX["triton.matmul"], (33, 65, 127), args=(a, b), note=" with a = a transposed view")


# -- known cheats, for every exercise ------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.key)
def test_fresh_inputs_same_address(ex):
    """A second call with new values in the SAME input tensors (same addresses) must see them."""
    args = ex.make(ex.small)
    run_checked(ex, ex.small, args)
    refill(args, ex.make(ex.small))
    run_checked(ex, ex.small, args, note=" (second call: same input tensors, new values)")


@points(1)
@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.key)
def test_output_comes_from_the_kernel(ex):
    """With the kernel swapped for a launch that does nothing, the output must NOT be right."""
    args = ex.make(ex.small)
    expected = ex.expected(*args)
    guarded = h.Guarded(tuple(expected.shape), out_dtype(expected))
    with h.spying(ex.module, ex.kernel, run=False) as spy:
        ex.fn(*args, out=guarded.out)
    what = ex.describe(args)
    if not spy.configs:
        pytest.fail(f"{what}: `{ex.kernel}` was never launched", pytrace=False)
    atol, rtol = ex.tol(ex.small)
    got = guarded.out.detach().double().cpu()
    if torch.allclose(got, expected.double().cpu(), atol=atol, rtol=rtol):
        pytest.fail(
            f"{what}: the output is right even when `{ex.kernel}` does nothing, so it is computed "
            "elsewhere (torch on the host?). Compute it in the kernel.",
            pytrace=False,
        )


# -- benchmarks (GPU only) -----------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.key)
@pytest.mark.gpu
@pytest.mark.bench
@pytest.mark.slow
@needs_gpu
def test_bench(ex, record_benchmark):
    """Speedup over PyTorch per shape (fresh inputs, L2 flushed, canaried output, re-checked)."""
    from cohort.grading import bench

    results = []
    for shape in ex.bench_shapes:
        args = ex.make(shape)
        expected_dtype = out_dtype(ex.expected(*args))
        out_shape = tuple(ex.reference(*args).shape)
        atol, rtol = ex.tol(shape)

        def prepare(args=args, shape=shape):
            refill(args, ex.make(shape))
            return args

        def verify(args, out, shape=shape, atol=atol, rtol=rtol):
            assert_close(out, ex.expected(*args), what=ex.describe(args), atol=atol, rtol=rtol)

        results.append(
            bench.benchmark(
                ex.key,
                str(shape),
                ex.fn,
                ex.reference,
                prepare,
                verify,
                out_shape=out_shape,
                out_dtype=expected_dtype,
                bytes_moved=ex.bytes_moved(shape),
                device=h.DEVICE,
                record=record_benchmark,
            )
        )
    for r in results:
        print(f"{r.name} {r.shape}: {r.time_s * 1e6:.1f} us, speedup {r.speedup:.2f}, {r.note()}")
    print(f"{ex.key}: geometric mean speedup {bench.geomean([r.speedup for r in results]):.2f}")
