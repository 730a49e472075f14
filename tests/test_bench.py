"""The benchmark harness's pure-Python parts, on CPU with scripted timers and clocks."""

from __future__ import annotations

import math

import pytest
import torch

from cohort.grading import bench, results
from cohort.grading.bench import BenchmarkError, Canary, Settings


class FakeTimer:
    """Returns the scripted durations one per stop(), and counts the calls it timed."""

    def __init__(self, durations):
        self.durations, self.started, self.stopped = list(durations), 0, 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> float:
        self.stopped += 1
        return self.durations.pop(0) if len(self.durations) > 1 else self.durations[0]


class FakeClock:
    """A clock that advances by `step` seconds each time it is read."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# -- statistics and the stopping rule ------------------------------------------------------------


def test_summarize():
    s = bench.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.n == 5 and s.median == 3.0 and s.minimum == 1.0
    assert s.mean == pytest.approx(22.0)
    assert s.stdev == pytest.approx(43.6176, rel=1e-4)
    assert s.rse == pytest.approx(43.6176 / math.sqrt(5) / 22.0, rel=1e-4)


def test_summarize_single_and_empty():
    assert bench.summarize([2.0]).rse == math.inf
    with pytest.raises(ValueError):
        bench.summarize([])


def test_should_stop_needs_min_repeats_and_small_rse():
    settings = Settings(min_repeats=5, target_rse=0.01, time_cap_s=10.0)
    assert not bench.should_stop([], 0.0, settings)
    assert not bench.should_stop([1.0] * 4, 0.0, settings)  # too few
    assert bench.should_stop([1.0] * 5, 0.0, settings)  # no spread at all
    noisy = [1.0, 2.0] * 5
    assert not bench.should_stop(noisy, 0.0, settings)  # RSE about 5%


def test_should_stop_on_caps():
    settings = Settings(min_repeats=50, max_repeats=20, target_rse=0.0, time_cap_s=1.0)
    assert bench.should_stop([1.0, 2.0] * 10, 0.0, settings)  # max_repeats
    settings = Settings(min_repeats=50, target_rse=0.0, time_cap_s=1.0)
    assert bench.should_stop([5.0], 1.5, settings)  # the time cap wins over min_repeats
    assert not bench.should_stop([], 1.5, settings)  # but one time is always taken


def test_geomean():
    assert bench.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert bench.geomean([0.5, 2.0, 1.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bench.geomean([1.0, 0.0])
    with pytest.raises(ValueError):
        bench.geomean([])


def test_one_geomean_for_grading_and_the_report():
    """results.geomean (what results.json and the dashboard use) keeps the positive values."""
    assert results.geomean([2.0, 8.0, 0.0, -1.0]) == pytest.approx(bench.geomean([2.0, 8.0]))
    assert results.geomean([0.0]) is None and results.geomean([]) is None
    assert results.geomean_speedup([{"speedup": 2.0}, {"speedup": 8.0}, {}]) == pytest.approx(4.0)


# -- measure: warm-up, fresh inputs, flush, verify ------------------------------------------------


def test_measure_stops_when_the_rse_is_small():
    timer = FakeTimer([1e-3])
    settings = Settings(warmup=2, min_repeats=7, target_rse=0.01, time_cap_s=100.0)
    calls, prepared, flushed, verified = [], [], [], []

    def prepare():
        prepared.append(1)
        return (len(prepared),)

    times = bench.measure(
        lambda i: calls.append(i) or i, prepare, timer=timer, settings=settings,
        flush=lambda: flushed.append(1), verify=lambda args, out: verified.append((args, out)),
    )  # fmt: skip
    assert times == [1e-3] * 7
    assert calls == list(range(1, 10))  # 2 warm-up + 7 timed, each with fresh inputs
    assert len(flushed) == 7 and timer.started == 7  # warm-up is neither flushed nor timed
    assert verified == [((i,), i) for i in range(1, 10)]  # every output is checked


def test_measure_stops_at_the_time_cap():
    timer = FakeTimer([1.0, 3.0])  # alternating would never reach a small RSE
    settings = Settings(warmup=0, min_repeats=3, max_repeats=10_000, target_rse=1e-9, time_cap_s=5)
    times = bench.measure(lambda: None, tuple, timer=timer, settings=settings, clock=FakeClock(1.0))
    assert 1 <= len(times) <= 6


def test_measure_propagates_a_failed_check():
    def verify(args, out):
        raise AssertionError("wrong output")

    with pytest.raises(AssertionError, match="wrong output"):
        bench.measure(lambda: 1, tuple, timer=FakeTimer([1.0]), verify=verify)


# -- canaries ------------------------------------------------------------------------------------


def test_canary_untouched():
    c = Canary((3, 5), torch.float32)
    assert c.out.shape == (3, 5) and c.margin >= bench.CANARY_MIN_MARGIN and c.margin % 64 == 0
    c.out.copy_(torch.randn(3, 5))  # writing the whole output is fine
    assert c.violations() == (0, 0)
    c.check("fine")


def test_canary_catches_writes_past_the_end_and_before_the_start():
    c = Canary((7,), torch.float32)
    flat = c.buffer
    flat[c.margin + 7 : c.margin + 10] = 1.0  # three past the end, like a missing mask
    flat[c.margin - 1] = 0.0
    assert c.violations() == (1, 3)
    with pytest.raises(BenchmarkError, match="1 elements before it and 3 after it"):
        c.check("add (7,)")


def test_canary_integer_outputs_and_reset():
    c = Canary((4,), torch.int32)
    assert (c.out == bench.INT_SENTINEL).all()
    c.out.fill_(0)
    c.reset()
    assert (c.out == bench.INT_SENTINEL).all()
    c.buffer[-1] = 0
    assert c.violations() == (0, 1)


def test_canary_margin_covers_large_outputs():
    c = Canary((100, 100), torch.float32)
    assert c.margin >= 10_000  # a whole output's worth of rows can stick out


# -- the physical floor --------------------------------------------------------------------------


def test_floor():
    assert bench.physical_floor_s(2e9, 1e12) == pytest.approx(2e-3)
    bench.check_floor([2e-3, 3e-3], 2e9, 1e12, what="ok", slack=0.5)
    bench.check_floor([1.1e-3], 2e9, 1e12, what="just above half the floor", slack=0.5)
    with pytest.raises(BenchmarkError, match="at least 2e\\+03 us"):
        bench.check_floor([5e-3, 1e-6], 2e9, 1e12, what="cached", slack=0.5)


# -- benchmark end to end, on CPU with fakes ----------------------------------------------------


class CostTimer:
    """stop() returns whatever the timed call charged with `charge` (fake device time)."""

    def __init__(self):
        self.cost = 0.0

    def charge(self, seconds: float) -> None:
        self.cost = seconds

    def start(self) -> None:
        self.cost = 0.0

    def stop(self) -> float:
        return self.cost


SETTINGS = Settings(warmup=1, min_repeats=5, max_repeats=5, target_rse=1.0, time_cap_s=100.0)


def _benchmark(student, student_times, ref_time, bytes_moved=4e3):
    """Benchmark `student(x, out)` against x * 2 with fake times: student_times one per call (the
    last one repeats), ref_time for every reference call."""
    x, timer, times = torch.zeros(16), CostTimer(), list(student_times)

    def timed_student(x, out):
        timer.charge(times.pop(0) if len(times) > 1 else times[0])
        return student(x, out=out)

    def reference(x):
        timer.charge(ref_time)
        return x * 2

    def prepare():
        x.normal_()  # fresh values at the same address
        return (x,)

    def verify(args, out):
        torch.testing.assert_close(out, args[0] * 2)

    recorded = []
    result = bench.benchmark(
        "double", "(16,)", timed_student, reference, prepare, verify,
        out_shape=(16,), out_dtype=torch.float32, bytes_moved=bytes_moved, device="cpu",
        settings=SETTINGS, timer=timer, flush=lambda: None, bandwidth=1e9,
        record=lambda *a: recorded.append(a),
    )  # fmt: skip
    return result, recorded


def test_benchmark_records_speedup_and_bandwidth():
    def student(x, out):
        return torch.mul(x, 2, out=out)

    result, recorded = _benchmark(student, [1e-5], 2e-5)
    assert result.time_s == pytest.approx(1e-5) and result.ref_time_s == pytest.approx(2e-5)
    assert result.speedup == pytest.approx(2.0)
    assert result.bandwidth_fraction == pytest.approx(4e3 / 1e-5 / 1e9)  # 40%
    [(name, shape, t, ref, note)] = recorded
    assert (name, shape, t, ref) == ("double", "(16,)", result.time_s, result.ref_time_s)
    assert "40% of measured peak bandwidth" in note


def test_benchmark_catches_pointer_caching():
    cache = {}

    def student(x, out):  # remembers the answer for an address: stale once the values change
        if x.data_ptr() not in cache:
            cache[x.data_ptr()] = x * 2
        return out.copy_(cache[x.data_ptr()])

    with pytest.raises(AssertionError):
        _benchmark(student, [1e-5], 2e-5)


def test_benchmark_catches_writes_outside_the_output():
    def student(x, out):
        torch.mul(x, 2, out=out)
        wide = out.as_strided((out.numel() + 4,), (1,))  # four past the end
        wide[-4:] = 0.0
        return out

    with pytest.raises(BenchmarkError, match="after it were overwritten"):
        _benchmark(student, [1e-5], 2e-5)


def test_benchmark_requires_writing_into_out():
    with pytest.raises(BenchmarkError, match="must write into `out`"):
        _benchmark(lambda x, out: x * 2, [1e-5], 2e-5)


def test_benchmark_rejects_times_below_the_floor():
    def student(x, out):
        return torch.mul(x, 2, out=out)

    with pytest.raises(BenchmarkError, match="Is a result cached"):
        _benchmark(student, [5e-3, 1e-9], 2e-5, bytes_moved=4e6)  # floor 4 ms at 1 GB/s
