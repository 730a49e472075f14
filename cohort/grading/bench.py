"""Benchmarks of a pair's GPU kernel against the PyTorch reference, hard to fool by accident or on
purpose (docs/w1d6_kernels.md, "Benchmarks (GPU runner only)"; docs/runners.md, "Threat model").

- Device time from CUDA events, after warm-up calls (which also compile the kernel).
- Fresh random inputs for every timed call, refilled in place: the addresses stay the same and the
  values change, so a result cached by input pointer comes out wrong; every output is re-checked.
- The L2 cache is flushed (a buffer larger than L2 is written) before every timed call.
- Repeats until the relative standard error of the mean is small or a time cap is hit; the median
  is reported. Speedup = reference time / student time, per shape; `geomean` over shapes.
- The output handed to the student is the middle of a larger NaN-filled buffer: writes outside it
  show up in the margins (`Canary`).
- A time below the physical floor (bytes moved / measured peak bandwidth, from a large
  device-to-device copy) is rejected: no correct kernel moves its data that fast.

The statistics, the stopping rule, the canaries and the floor are plain Python over tensors and
take their timer, clock and flush as arguments, so tests/test_bench.py runs them on CPU.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from cohort.grading import results

INT_SENTINEL = -0x5A5A5A5  # canary value of integer outputs (floating outputs use NaN)
CANARY_MIN_MARGIN = 4096  # elements on each side of an output, at least
FALLBACK_L2_BYTES = 64 * 2**20  # when the device does not report its L2 size


class BenchmarkError(AssertionError):
    """A benchmark whose numbers cannot be trusted (written outside the output, impossible time)."""


@dataclass(frozen=True)
class Settings:
    warmup: int = 3  # untimed calls first (compilation, caches, clocks)
    min_repeats: int = 10
    max_repeats: int = 1000
    target_rse: float = 0.01  # stop when the standard error of the mean is 1% of the mean...
    time_cap_s: float = 1.0  # ...or when this much wall time went into timed calls
    floor_slack: float = 0.5  # reject times below this fraction of the physical floor


# -- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    mean: float
    stdev: float
    rse: float  # relative standard error of the mean: stdev / sqrt(n) / mean
    minimum: float


def summarize(times: Sequence[float]) -> Stats:
    """Median, mean, sample standard deviation and relative standard error of some times."""
    if not times:
        raise ValueError("summarize: no times")
    n, mean = len(times), statistics.fmean(times)
    stdev = statistics.stdev(times) if n > 1 else 0.0
    rse = stdev / math.sqrt(n) / mean if n > 1 and mean > 0 else math.inf
    return Stats(n, statistics.median(times), mean, stdev, rse, min(times))


def should_stop(times: Sequence[float], elapsed_s: float, settings: Settings) -> bool:
    """The stopping rule: enough repeats and a small relative standard error, or a cap hit.

    The time cap wins over `min_repeats` (a call that takes seconds is timed a few times only), but
    at least one time is always taken.
    """
    n = len(times)
    if n == 0:
        return False
    if n >= settings.max_repeats or elapsed_s >= settings.time_cap_s:
        return True
    return n >= settings.min_repeats and summarize(times).rse <= settings.target_rse


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive numbers (the mean of speedups that does not favour big ones)."""
    mean = results.geomean(values) if all(v > 0 for v in values) else None
    if mean is None:
        raise ValueError(f"geomean needs positive values, got {list(values)}")
    return mean


# -- the physical floor --------------------------------------------------------------------------


def physical_floor_s(bytes_moved: float, bandwidth: float) -> float:
    """The least time in which `bytes_moved` bytes can cross memory at `bandwidth` bytes/s."""
    return bytes_moved / bandwidth


def check_floor(
    times: Sequence[float],
    bytes_moved: float,
    bandwidth: float,
    *,
    what: str,
    slack: float = Settings.floor_slack,
) -> None:
    """Reject a benchmark whose fastest call beat the floor by more than `slack` allows."""
    floor = physical_floor_s(bytes_moved, bandwidth)
    fastest = min(times)
    if fastest < slack * floor:
        raise BenchmarkError(
            f"{what}: a call took {fastest * 1e6:.3g} us, but moving its {bytes_moved / 1e6:.3g} MB "
            f"takes at least {floor * 1e6:.3g} us at the measured {bandwidth / 1e9:.0f} GB/s. Is a "
            "result cached, or is the work skipped?"
        )


# -- canaries ------------------------------------------------------------------------------------


class Canary:
    """An output tensor in the middle of a larger buffer filled with NaN (or INT_SENTINEL).

    `out` is handed to the code under test; `check` fails when anything in the margins changed.
    The margin is at least CANARY_MIN_MARGIN elements and at least the output's size, rounded up
    to 64 elements so that `out` keeps the buffer's alignment.
    """

    def __init__(
        self,
        shape: Sequence[int],
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
        margin: int | None = None,
    ):
        numel = math.prod(shape)
        margin = max(CANARY_MIN_MARGIN, numel) if margin is None else margin
        self.margin, self.numel, self.shape = -(-margin // 64) * 64, numel, tuple(shape)
        self.fill = math.nan if dtype.is_floating_point else INT_SENTINEL
        self.buffer = torch.full((numel + 2 * self.margin,), self.fill, dtype=dtype, device=device)
        self.out = self.buffer[self.margin : self.margin + numel].view(self.shape)

    def reset(self) -> None:
        """Refill the output itself, so that the next check sees only the next call's writes."""
        self.out.fill_(self.fill)

    def _changed(self, part: torch.Tensor) -> int:
        untouched = part.isnan() if self.fill != self.fill else part == self.fill
        return int((~untouched).sum())

    def violations(self) -> tuple[int, int]:
        """How many margin elements were written (before the output, after it)."""
        before = self.buffer[: self.margin]
        after = self.buffer[self.margin + self.numel :]
        return self._changed(before), self._changed(after)

    def check(self, what: str) -> None:
        before, after = self.violations()
        if before or after:
            raise BenchmarkError(
                f"{what}: wrote outside its output of shape {self.shape}: {before} elements before "
                f"it and {after} after it were overwritten. A missing bounds check or mask?"
            )


# -- timing --------------------------------------------------------------------------------------


class Timer(Protocol):
    def start(self) -> None: ...
    def stop(self) -> float: ...  # seconds since start()


class CudaTimer:
    """Device time between start() and stop(), from a pair of CUDA events on the current stream."""

    def __init__(self) -> None:
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


class L2Flush:
    """Writes a buffer twice the size of the L2 cache, evicting whatever the last call left there."""

    def __init__(self, device: torch.device | str = "cuda"):
        device = torch.device(device)
        props = torch.cuda.get_device_properties(device)
        l2 = getattr(props, "L2_cache_size", 0) or FALLBACK_L2_BYTES
        self.buffer = torch.empty(2 * l2 // 4, dtype=torch.int32, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


@functools.cache
def peak_bandwidth(device: str = "cuda", nbytes: int = 2**30, repeats: int = 10) -> float:
    """Measured peak memory bandwidth in bytes/s: the best of `repeats` device-to-device copies of
    `nbytes` (each reads and writes nbytes)."""
    dev = torch.device(device)
    free, _ = torch.cuda.mem_get_info(dev)
    nbytes = min(nbytes, free // 8)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)
    timer, best = CudaTimer(), math.inf
    for i in range(repeats + 2):
        timer.start()
        dst.copy_(src)
        elapsed = timer.stop()
        if i >= 2:  # the first two warm up
            best = min(best, elapsed)
    return 2 * src.numel() * 4 / best


def measure(
    call: Callable,
    prepare: Callable[[], tuple],
    *,
    timer: Timer,
    settings: Settings = Settings(),
    flush: Callable[[], None] | None = None,
    verify: Callable[[tuple, object], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Times of `call(*prepare())`: warm-up, then repeats until `should_stop`.

    `prepare` gives fresh inputs for every call (untimed); `flush` runs before every timed call;
    `verify(args, output)` checks every output, warm-up included (untimed).
    """
    for _ in range(settings.warmup):
        args = prepare()
        output = call(*args)
        if verify:
            verify(args, output)
    times: list[float] = []
    began = clock()
    while not should_stop(times, clock() - began, settings):
        args = prepare()
        if flush:
            flush()
        timer.start()
        output = call(*args)
        times.append(timer.stop())
        if verify:
            verify(args, output)
    return times


# -- one benchmark -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    shape: str
    stats: Stats
    ref_stats: Stats
    bytes_moved: float
    bandwidth: float

    @property
    def time_s(self) -> float:
        return self.stats.median

    @property
    def ref_time_s(self) -> float:
        return self.ref_stats.median

    @property
    def speedup(self) -> float:
        return self.ref_time_s / self.time_s

    @property
    def bandwidth_fraction(self) -> float:
        """Achieved bandwidth (bytes moved / median time) over the measured peak."""
        return self.bytes_moved / self.time_s / self.bandwidth

    def note(self) -> str:
        return (
            f"{self.bandwidth_fraction:.0%} of measured peak bandwidth "
            f"({self.bandwidth / 1e9:.0f} GB/s); median of {self.stats.n} "
            f"(RSE {self.stats.rse:.1%}), reference median of {self.ref_stats.n} "
            f"(RSE {self.ref_stats.rse:.1%})"
        )


def benchmark(
    name: str,
    shape: str,
    student: Callable,
    reference: Callable,
    prepare: Callable[[], tuple],
    verify: Callable[[tuple, torch.Tensor], None],
    *,
    out_shape: Sequence[int],
    out_dtype: torch.dtype,
    bytes_moved: float,
    device: torch.device | str = "cuda",
    settings: Settings = Settings(),
    timer: Timer | None = None,
    flush: Callable[[], None] | None = None,
    bandwidth: float | None = None,
    record: Callable[..., None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Result:
    """Time `student(*args, out=out)` against `reference(*args)` on the same fresh inputs.

    `out` is a canaried buffer; every student output is checked by `verify(args, out)` and for
    writes outside it. The result is recorded with `record(name, shape, time_s, ref_time_s, note)`
    (the `record_benchmark` fixture) unless the time beats the physical floor.
    """
    what = f"{name} {shape}"
    canary = Canary(out_shape, out_dtype, device)

    def call_student(*args):
        canary.reset()
        return student(*args, out=canary.out)

    def verify_student(args: tuple, output) -> None:
        canary.check(what)
        if not isinstance(output, torch.Tensor) or output.data_ptr() != canary.out.data_ptr():
            raise BenchmarkError(f"{what}: must write into `out` and return it")
        verify(args, canary.out)

    timer = timer if timer is not None else CudaTimer()
    flush = flush if flush is not None else L2Flush(device)
    bandwidth = bandwidth if bandwidth is not None else peak_bandwidth(str(torch.device(device)))
    common = dict(timer=timer, settings=settings, flush=flush, clock=clock)
    times = measure(call_student, prepare, verify=verify_student, **common)
    ref_times = measure(reference, prepare, **common)
    check_floor(times, bytes_moved, bandwidth, what=what, slack=settings.floor_slack)
    result = Result(name, shape, summarize(times), summarize(ref_times), bytes_moved, bandwidth)
    if record is not None:
        record(name, shape, result.time_s, result.ref_time_s, result.note())
    return result
