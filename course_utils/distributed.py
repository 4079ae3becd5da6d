"""One job in several processes: what the fine-tune command needs under torchrun (notebook 15).

    job = cu.distributed.job_from_env()            # rank and world size, as torchrun sets them
    with cu.distributed.process_group(job, device):
        mine = cu.distributed.shard(len(dataset), job)      # this process's indices, no padding
        X = cu.distributed.gather_rows(embed(Subset(dataset, mine)), len(dataset), job)
        sums = cu.distributed.all_sum(torch.tensor([loss_sum, correct, count]))

torchrun (and ``accelerate launch``) start one process per GPU or CPU slot and tell each its
place in environment variables: ``RANK`` (0..N-1), ``WORLD_SIZE`` (N), ``LOCAL_RANK`` (the rank
on this machine, which picks the GPU) and ``MASTER_ADDR``/``MASTER_PORT`` (where they meet).
Without them the job is one process and every function here is a no-op, so the same code runs
in a notebook, on one GPU and on eight.
"""

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# How long a process waits for the others in a collective before it gives up. torch's default
# is 30 minutes; a peer that died is usually reported at once (its connection closes), and a
# hung one should not keep a classroom's job waiting half an hour.
TIMEOUT = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Job:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        """Rank 0 prints, writes files and holds the output folder's lock."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1

    def __str__(self):
        return f"process {self.rank} of {self.world_size}"


def job_from_env(environ=None):
    """The ``Job`` that torchrun's environment variables describe; one process without them."""
    environ = os.environ if environ is None else environ
    try:
        job = Job(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)),
                  int(environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers: {err}") from None
    if job.world_size < 1 or not 0 <= job.rank < job.world_size or job.local_rank < 0:
        raise ValueError(f"RANK={job.rank} does not fit WORLD_SIZE={job.world_size}")
    return job


def device_for(job, device):
    """The device of this process: its own GPU (``cuda:LOCAL_RANK``) on CUDA, else ``device``."""
    device = torch.device(device)
    if device.type == "cuda" and job.distributed:
        return torch.device("cuda", job.local_rank)
    return device


@contextlib.contextmanager
def process_group(job, device):
    """Join the job's other processes (NCCL on CUDA, gloo on the CPU); leave on exit.

    One process: nothing to join, and the block runs as it is."""
    if not job.distributed:
        yield
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                            rank=job.rank, world_size=job.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _active():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(n, job):
    """This process's share of ``n`` items: every ``world_size``-th index from ``rank``.

    Unlike ``DistributedSampler`` nothing is repeated to even the shares out, so a metric summed
    over the shards counts every image exactly once (notebook 15 shows the difference)."""
    return list(range(job.rank, n, job.world_size))


def gather_rows(local, n, job):
    """Put every process's rows of ``shard(n, job)`` back into one ``[n, ...]`` tensor, in the
    order of the data set, on every process (a CPU tensor in, a CPU tensor out)."""
    if not job.distributed:
        return local
    if not _active():
        raise RuntimeError("gather_rows: join the job first (cu.distributed.process_group)")
    longest = len(range(0, n, job.world_size))  # rank 0 has the most rows
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: len(local)] = local
    device = _collective_device()
    parts = [torch.empty_like(padded, device=device) for _ in range(job.world_size)]
    dist.all_gather(parts, padded.to(device))  # all_gather needs the same shape everywhere
    out = torch.empty((n, *local.shape[1:]), dtype=local.dtype)
    for rank, part in enumerate(parts):
        rows = range(rank, n, job.world_size)
        out[list(rows)] = part[: len(rows)].cpu()
    return out


def all_sum(values):
    """``values`` (a 1-D float tensor of sums, e.g. loss, correct, count) summed over every
    process; returned unchanged in a single process."""
    if not _active():
        return values
    device = _collective_device()
    summed = values.double().to(device)  # float64: counts stay exact beyond 2**24 images
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return summed.to(values.device, values.dtype)


def _collective_device():
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
