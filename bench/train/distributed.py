"""Data-parallel training with torch.distributed (gloo on CPU, nccl on CUDA): the process group of ``bench run
--nproc N`` (`spawn`) or of torchrun (found in the environment). `Rank` says where this process stands; the
collectives below (every rank calls them at the same point) do nothing in a single process."""

from __future__ import annotations

import datetime as _dt
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from bench.core.errors import BenchError

log = logging.getLogger(__name__)

TIMEOUT = _dt.timedelta(minutes=int(os.environ.get("BENCH_DIST_TIMEOUT_MINUTES", "30")))


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def current() -> Rank:
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def backend(device: str) -> str:
    return "nccl" if str(device).startswith("cuda") else "gloo"


def torchrun_env() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def env_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), readable before the group exists."""
    return int(os.environ.get("RANK", "0")) if torchrun_env() else 0


def init_from_env(device: str) -> bool:
    """Join torchrun's process group; True if this call joined it (then `leave` it when done)."""
    if torchrun_env() and not dist.is_initialized():
        dist.init_process_group(backend(device), init_method="env://", timeout=TIMEOUT)
        return True
    return False


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str, r: Rank) -> str:
    """The device of rank `r`: ``cuda:<local rank>`` under CUDA (made current), else `device`."""
    if r.active and str(device).startswith("cuda"):
        if torch.cuda.device_count() <= r.local_rank:
            raise BenchError(f"rank {r.rank} needs cuda:{r.local_rank}; {torch.cuda.device_count()} GPU(s) visible")
        torch.cuda.set_device(r.local_rank)
        return f"cuda:{r.local_rank}"
    return device


# collectives (no-ops in a single process)
def broadcast_object(obj, r: Rank):
    """Rank 0's `obj` on every rank."""
    if not r.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, r: Rank) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not r.active:
        return [obj]
    out = [None] * r.world
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(t: torch.Tensor, r: Rank) -> torch.Tensor:
    if not r.active:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / r.world


def barrier(r: Rank) -> None:
    if r.active:
        dist.barrier()


# bench run --nproc N
def _child(rank: int, world: int, init: str, device: str, fn, kwargs: dict) -> None:
    torch.distributed.init_process_group(backend(device), init_method=init, rank=rank, world_size=world,
                                         timeout=TIMEOUT)
    try:
        fn(**kwargs)
        dist.barrier()   # no rank tears the group down while another still has gloo work in flight
    finally:
        dist.destroy_process_group()
    # done, and rank 0 knows it (the barrier): leave without the interpreter's teardown, in which gloo's
    # threads can still end the process with std::terminate ("terminate called without an active
    # exception", seen on fresh clones after every rank had finished its work)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(nproc: int, device: str, fn, kwargs: dict, main_kwargs: dict | None = None):
    """Rank 0's ``fn(**kwargs, **main_kwargs)``, ranks 1..nproc-1 spawned (`fn` and `kwargs` must pickle) and
    joined before returning."""
    if str(device).startswith("cuda") and torch.cuda.device_count() < nproc:
        raise BenchError(f"--nproc {nproc} on CUDA needs {nproc} GPUs; {torch.cuda.device_count()} visible")
    folder = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    init = (folder / "rendezvous").as_uri()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_child, args=(rank, nproc, init, device, fn, kwargs), name=f"bench-rank{rank}")
             for rank in range(1, nproc)]
    for p in procs:
        p.start()
    ok = False
    try:
        dist.init_process_group(backend(device), init_method=init, rank=0, world_size=nproc, timeout=TIMEOUT)
        result = fn(**kwargs, **(main_kwargs or {}))
        dist.barrier()   # as in _child: every rank done before any destroys the group (a race seen on a loaded machine)
        ok = True
        return result
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        for p in procs:
            p.join(timeout=None if ok else 30)
            if p.is_alive():
                p.terminate()
                p.join()
        shutil.rmtree(folder, ignore_errors=True)
        failed = [p.name for p in procs if p.exitcode != 0]
        if ok and failed:
            # every rank passed the final barrier, so its work is done and rank 0 holds the result; a rank
            # killed by a signal after that (a teardown abort) loses nothing, an error exit status does
            crashed = [p.name for p in procs if p.exitcode is not None and p.exitcode < 0]
            if set(failed) == set(crashed):
                log.warning("data-parallel training: %s ended by a signal after the work was done", ", ".join(crashed))
            else:
                raise BenchError(f"data-parallel training: {', '.join(failed)} failed (see the traceback above)")
