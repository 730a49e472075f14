"""Helpers for the w1d6_kernels graders: simulators, guarded outputs and launch spies.

Importing this module BEFORE mlab.w1d6_kernels matters: without a CUDA GPU it sets
NUMBA_ENABLE_CUDASIM=1 and TRITON_INTERPRET=1, which Numba reads when numba.cuda is imported and
Triton reads when a kernel is decorated. The kernels then run in Numba's CUDA simulator (every GPU
thread is a Python thread: keep grids tiny) and Triton's interpreter (NumPy), on CPU tensors.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch

SIMULATED = not torch.cuda.is_available()
if SIMULATED:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    os.environ["TRITON_INTERPRET"] = "1"
DEVICE = torch.device("cpu" if SIMULATED else "cuda")

INT_SENTINEL = -0x5A5A5A5  # guard value around integer outputs (float outputs use NaN)


class Guarded:
    """An output in the middle of a larger buffer of NaN (or INT_SENTINEL): a kernel that writes
    past either end of its output changes the margins, and `check` says so.

    The margins hold at least 4096 elements and at least the output's size (a 2-D kernel without a
    mask writes whole rows past the end), rounded up to 64 elements to keep the alignment.
    """

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device = DEVICE):
        numel = math.prod(shape)
        self.margin, self.numel, self.shape = -(-max(4096, numel) // 64) * 64, numel, tuple(shape)
        self.fill = math.nan if dtype.is_floating_point else INT_SENTINEL
        self.buffer = torch.full((numel + 2 * self.margin,), self.fill, dtype=dtype, device=device)
        self.out = self.buffer[self.margin : self.margin + numel].view(self.shape)

    def _written(self, part: torch.Tensor) -> int:
        kept = part.isnan() if self.buffer.is_floating_point() else part == self.fill
        return int((~kept).sum())

    def check(self, what: str) -> None:
        before = self._written(self.buffer[: self.margin])
        after = self._written(self.buffer[self.margin + self.numel :])
        if before or after:
            pytest.fail(
                f"{what}: wrote outside the output of shape {self.shape} ({before} elements before "
                f"it, {after} after it). A missing bounds check (`if i < n`) or mask?",
                pytrace=False,
            )

    def check_returned(self, got, what: str) -> None:
        same = isinstance(got, torch.Tensor) and got.shape == self.out.shape
        if not same or got.data_ptr() != self.out.data_ptr():
            pytest.fail(
                f"{what}: returned {describe(got)}; write the result into the `out` you were given "
                "and return it",
                pytrace=False,
            )


def describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor {tuple(x.shape)} {str(x.dtype).removeprefix('torch.')} of its own"
    return type(x).__name__


class LaunchSpy:
    """Stands in for a kernel: records each launch configuration, then launches the real kernel
    (run=True) or nothing at all (run=False). Works for `kernel[blocks, threads](...)` (Numba) and
    `kernel[grid](...)` (Triton) alike."""

    def __init__(self, kernel, run: bool = True):
        self.kernel, self.run, self.configs = kernel, run, []

    def __getitem__(self, config):
        self.configs.append(config)
        return self.kernel[config] if self.run else _no_launch

    def __getattr__(self, name):
        return getattr(self.kernel, name)


def _no_launch(*args, **kwargs) -> None:
    return None


@contextmanager
def spying(module, kernel: str, run: bool = True) -> Iterator[LaunchSpy]:
    """Replace `module.<kernel>` (the module-level name the wrappers launch) with a LaunchSpy."""
    original = getattr(module, kernel)
    spy = LaunchSpy(original, run)
    setattr(module, kernel, spy)
    try:
        yield spy
    finally:
        setattr(module, kernel, original)


def _simulator() -> SimpleNamespace | None:
    """The parts of Numba's CUDA simulator the checks below instrument; None on a real GPU, or
    when the simulator is not laid out as expected (the checks are then skipped, not failed)."""
    if not SIMULATED:
        return None
    try:
        from numba.cuda.simulator import kernelapi
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        from numba.cuda.simulator.kernel import BlockThread
    except ImportError:
        return None
    needed = ("FakeCUDAShared", "numpy_support", "types", "addlock")
    if not all(hasattr(kernelapi, name) for name in needed):
        return None
    return SimpleNamespace(
        kernelapi=kernelapi, FakeCUDAArray=FakeCUDAArray, BlockThread=BlockThread
    )


@contextmanager
def interleaved_threads() -> Iterator[None]:
    """Make the simulator's threads take turns between reading and writing memory.

    Simulated threads are Python threads that rarely switch, so a plain read-add-write by many
    threads usually comes out right there, unlike on a GPU. Inside this context every read of a
    device array lets other threads run (except during an atomic operation, which holds a lock),
    so unsynchronized updates get lost as they would on hardware. Does nothing on a real GPU.
    """
    simulator = _simulator()
    if simulator is None:
        yield
        return
    kernelapi, FakeCUDAArray = simulator.kernelapi, simulator.FakeCUDAArray
    read = FakeCUDAArray.__getitem__

    def read_then_yield(self, index):
        value = read(self, index)
        if not kernelapi.addlock.locked():
            time.sleep(0)  # gives up the GIL: another thread runs before this one writes
        return value

    FakeCUDAArray.__getitem__ = read_then_yield
    try:
        yield
    finally:
        FakeCUDAArray.__getitem__ = read


# -- a race checker for shared memory in the simulator ---------------------------------------------


class SharedMemoryRace(RuntimeError):
    """Two threads of a block used one shared-memory slot, at least one writing, with no
    cuda.syncthreads() between them: the result depends on which thread runs first."""


def _slot(index) -> tuple | None:
    """The slot an index names, or None for slices and other fancy indexing (not checked)."""
    parts = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, (int, np.integer)) for i in parts):
        return None
    return tuple(int(i) for i in parts)


def _inside_atomic() -> bool:
    """Is the access being made by the simulator's own atomic operation (which holds a lock)?"""
    return sys._getframe(2).f_globals.get("__name__", "").endswith("simulator.kernelapi")


class RaceCheckedArray:
    """A simulated `cuda.shared.array` that remembers, per slot, who wrote it and who read it in
    which phase (a thread's phase = how many syncthreads it has passed), like CUDA's
    `compute-sanitizer --tool racecheck`. A read of a slot another thread wrote in the same phase,
    or a write to a slot another thread read in the same phase, raises SharedMemoryRace. The
    memory is filled with NaN when each block starts, as uninitialized shared memory holds garbage.
    """

    def __init__(self, array: np.ndarray):
        self._array, self._block = array, None
        self._writer: dict[tuple, tuple[int, int]] = {}  # slot -> (thread, phase)
        self._readers: dict[tuple[tuple, int], set[int]] = {}  # (slot, phase) -> threads

    def _who(self):
        thread = threading.current_thread()
        if not hasattr(thread, "blockIdx"):
            return None
        block = (thread.blockIdx.x, thread.blockIdx.y, thread.blockIdx.z)
        if block != self._block:  # the simulator runs blocks one after the other
            self._block = block
            self._writer.clear()
            self._readers.clear()
            if self._array.dtype.kind == "f":
                self._array.fill(np.nan)
        return thread, getattr(thread, "racecheck_phase", 0)

    def _race(self, thread, other: int, slot: tuple, what: str) -> SharedMemoryRace:
        return SharedMemoryRace(
            f"shared memory race on slot {slot if len(slot) > 1 else slot[0]}: this thread "
            f"{what} it, and thread {_thread_index(thread, other)} of the block touched it too, "
            "with no cuda.syncthreads() in between. Is a syncthreads missing?"
        )

    def __getitem__(self, index):
        who = None if _inside_atomic() else self._who()
        slot = _slot(index)
        if who is not None and slot is not None:
            thread, phase = who
            writer = self._writer.get(slot)
            if writer is not None and writer[0] != thread.thread_id and writer[1] == phase:
                raise self._race(thread, writer[0], slot, "reads")
            self._readers.setdefault((slot, phase), set()).add(thread.thread_id)
        return self._array[index]

    def __setitem__(self, index, value) -> None:
        who = None if _inside_atomic() else self._who()
        slot = _slot(index)
        if who is not None and slot is not None:
            thread, phase = who
            others = self._readers.get((slot, phase), set()) - {thread.thread_id}
            if others:
                raise self._race(thread, min(others), slot, "writes")
            self._writer[slot] = (thread.thread_id, phase)
        self._array[index] = value

    def __len__(self) -> int:
        return len(self._array)

    def __getattr__(self, name):
        return getattr(self._array, name)


def _thread_index(thread, thread_id: int) -> list[int]:
    """The threadIdx of the thread with this linear id, in the block of `thread`."""
    bx, by, _ = thread._manager._block_dim
    return [thread_id % bx, thread_id // bx % by, thread_id // (bx * by)]


@contextmanager
def racecheck() -> Iterator[None]:
    """Check every simulated shared-memory access for races (see RaceCheckedArray). Does nothing
    on a real GPU, or when the simulator's internals are not the expected ones."""
    simulator = _simulator()
    if simulator is None:
        yield
        return
    kernelapi, BlockThread = simulator.kernelapi, simulator.BlockThread
    allocate, sync = kernelapi.FakeCUDAShared.array, BlockThread.syncthreads
    as_dtype = kernelapi.numpy_support.as_dtype

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory: left unchecked
            return allocate(self, shape, dtype, alignment)
        caller = sys._getframe(1)  # one array per source line, as the simulator does
        arrays = self.__dict__.setdefault("_racecheck_arrays", {})
        key = (caller.f_code.co_filename, caller.f_lineno)
        if key not in arrays:
            dtype = as_dtype(dtype) if isinstance(dtype, kernelapi.types.Type) else dtype
            arrays[key] = RaceCheckedArray(np.empty(shape, dtype))
        return arrays[key]

    def syncthreads(self):
        self.racecheck_phase = getattr(self, "racecheck_phase", 0) + 1
        return sync(self)

    kernelapi.FakeCUDAShared.array, BlockThread.syncthreads = array, syncthreads
    try:
        yield
    finally:
        kernelapi.FakeCUDAShared.array, BlockThread.syncthreads = allocate, sync
