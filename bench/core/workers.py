"""Worker process pools that die with their parent: each worker asks the kernel for SIGKILL when its parent
dies (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed parent leaves no worker waiting forever with its
memory. Every pool of the benchmark is made here; workers run torch with one thread."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

from bench.core.errors import BenchError

PR_SET_PDEATHSIG = 1


def positive_jobs(jobs: int | None) -> int:
    """The number of worker processes: `jobs`, or all cores when None; a `BenchError` for < 1."""
    if jobs is None:
        return os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BenchError(f"--jobs {jobs!r}: must be an integer >= 1 (worker processes)",
                         hint="omit --jobs to use all cores")
    return jobs


def _init_worker(parent_pid: int | None, initializer, initargs) -> None:
    """SIGKILL this worker when its parent dies; exit now if `parent_pid` (None: unknown) is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:   # it died before the request above was in place
        os._exit(1)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(jobs: int | None = None, initializer=None, initargs=()) -> ProcessPoolExecutor:
    """A process pool of `jobs` workers (None: all cores) that die with this process."""
    # a forkserver's workers are children of the server, which itself ends with this process
    parent = None if multiprocessing.get_context().get_start_method() == "forkserver" else os.getpid()
    return ProcessPoolExecutor(positive_jobs(jobs), initializer=_init_worker, initargs=(parent, initializer, initargs))
