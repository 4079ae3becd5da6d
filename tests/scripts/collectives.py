"""cu.distributed's collectives and cu.train's ``reduce`` in a real two-process gloo job (used by
tests/test_distributed.py; run it as ``torchrun --nproc_per_node=2 this_file.py OUT.json``).

Every process computes on its own share of the same seeded data; process 0 writes what the job
computed beside what one process computes on all of it, for the test to compare.
"""

import json
import sys

import torch
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

from course_utils import data, distributed, train


def main(out):
    job = distributed.job_from_env()
    torch.manual_seed(0)  # the same data and model in every process
    n = 11  # not a multiple of 2: the shares differ by one
    X, y = torch.randn(n, 3), torch.randint(0, 4, (n,))
    model = nn.Linear(3, 4)
    loader = data.make_loader(TensorDataset(X, y), 4, shuffle=False, device="cpu", num_workers=0)
    mine = distributed.shard(n, job)
    mine_loader = data.make_loader(TensorDataset(X[mine], y[mine]), 4, shuffle=False,
                                   device="cpu", num_workers=0)
    with distributed.process_group(job, "cpu"):
        gathered = distributed.gather_rows(X[mine] * 10, n, job)
        summed = distributed.all_sum(torch.tensor([float(job.rank + 1), 1.0]))
        job_metrics = train.evaluate(model, mine_loader, reduce=distributed.all_sum)
        padded = list(DistributedSampler(range(n), job.world_size, job.rank, shuffle=False))
        shares = [None] * job.world_size
        torch.distributed.all_gather_object(shares, {"shard": mine, "sampler": padded})
    if job.is_main:
        result = {
            "gathered_equals_all": torch.equal(gathered, X * 10),
            "summed": summed.tolist(),
            "job_metrics": list(job_metrics),
            "one_process_metrics": list(train.evaluate(model, loader)),
            "shares": shares,
        }
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
