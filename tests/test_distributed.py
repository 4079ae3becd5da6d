"""cu.distributed: the job read from torchrun's variables, the shares, and the collectives in a
real two-process gloo job compared with one process doing all the work."""

import json
import os
import subprocess
import sys

import pytest
import torch

import course_utils as cu
from course_utils.distributed import Job

SCRIPTS = cu.env.REPO_ROOT / "tests" / "scripts"


def torchrun(*command, processes=2, timeout=120):
    """``torchrun --standalone --nproc_per_node=N *command`` (a script and its arguments, or
    ``-m module ...``), as a learner runs it, with one thread a process."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's own default, without its warning
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", *map(str, command)],
                          capture_output=True, text=True, timeout=timeout, env=environ,
                          cwd=cu.env.REPO_ROOT)


def test_without_torchrun_the_job_is_one_process():
    job = cu.distributed.job_from_env({})
    assert job == Job(0, 1, 0) and job.is_main and not job.distributed


def test_the_job_is_read_from_torchruns_variables():
    job = cu.distributed.job_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert job == Job(3, 4, 1) and not job.is_main and job.distributed
    assert str(job) == "process 3 of 4"


@pytest.mark.parametrize("environ", [{"RANK": "2", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "0"},
                                     {"RANK": "x"}, {"RANK": "-1", "WORLD_SIZE": "2"}])
def test_an_impossible_job_is_refused_with_the_variables_named(environ):
    with pytest.raises(ValueError, match="RANK"):
        cu.distributed.job_from_env(environ)


def test_the_shares_cover_every_index_once_without_padding():
    n, world = 11, 3
    shares = [cu.distributed.shard(n, Job(rank, world)) for rank in range(world)]
    assert sorted(sum(shares, [])) == list(range(n))
    assert [len(s) for s in shares] == [4, 4, 3]


def test_one_process_needs_no_collectives():
    X = torch.arange(6.0).reshape(3, 2)
    assert cu.distributed.gather_rows(X, 3, Job()) is X
    sums = torch.tensor([1.0, 2.0])
    assert cu.distributed.all_sum(sums) is sums


def test_a_cuda_process_gets_the_gpu_of_its_local_rank():
    assert cu.distributed.device_for(Job(5, 8, 1), "cuda") == torch.device("cuda", 1)
    assert cu.distributed.device_for(Job(0, 1, 0), "cuda") == torch.device("cuda")
    assert cu.distributed.device_for(Job(1, 2, 1), "cpu") == torch.device("cpu")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("collectives") / "result.json"
    result = torchrun(SCRIPTS / "collectives.py", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_gather_rows_puts_the_shares_back_in_the_data_sets_order(two_processes):
    assert two_processes["gathered_equals_all"]


def test_all_sum_adds_every_process_s_values(two_processes):
    assert two_processes["summed"] == [1.0 + 2.0, 2.0]


def test_evaluate_with_reduce_on_shares_equals_one_process_on_everything(two_processes):
    (job_loss, job_acc), (loss, acc) = two_processes["job_metrics"], two_processes["one_process_metrics"]
    assert job_acc == acc
    assert job_loss == pytest.approx(loss, abs=1e-6)  # float32 per batch, summed in float64


def test_distributed_sampler_pads_where_our_shares_do_not(two_processes):
    """The reason metrics use cu.distributed.shard: with 11 images and 2 processes, the
    DistributedSampler gives process 1 image 0 again, which a metric would count twice."""
    shard_0, shard_1 = (share["shard"] for share in two_processes["shares"])
    sampler_0, sampler_1 = (share["sampler"] for share in two_processes["shares"])
    assert len(shard_0) + len(shard_1) == 11
    assert len(sampler_0) + len(sampler_1) == 12 and sampler_1[-1] == 0
