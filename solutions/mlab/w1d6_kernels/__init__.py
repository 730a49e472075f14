"""Day w1d6_kernels: GPU kernels, first in Numba CUDA (`numba_kernels`), then in Triton
(`triton_kernels`). Read docs/w1d6_kernels.md for the thread model and the order of exercises.

Without a GPU the graders run the same kernels in Numba's CUDA simulator and Triton's interpreter
(they set NUMBA_ENABLE_CUDASIM=1 and TRITON_INTERPRET=1 before importing these modules); do the
same when you experiment on a laptop. Nothing is imported here, so that the environment can be set
before numba and triton load.
"""
