"""The notebooks' online paths, run offline: random weights stand in for the downloads.

Notebook 07 fine-tunes ResNet-50 and notebook 08 builds ``vision_learner(dls, resnet34)`` when
their torchvision weights can be had; notebook 13 probes four torchvision backbones besides the
Lite models. Here those weights files are random tensors placed in a
private torch hub cache (torchvision checks a file's hash only when it downloads it), so both
notebooks take their online branch, cell for cell, in fast mode. The accuracies mean nothing
with random weights; that the code runs, on the other architecture, is what is tested, and
that a notebook run from ``notebooks/`` writes only into its runs folder (``cu.env.runs_dir``).
"""

import os

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from torchvision import models as tvm

import course_utils as cu

REPO = cu.env.REPO_ROOT
ZOO_PROBED = ("resnet18", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")  # 13's probe


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory, shared_mirror):
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("resnet50", "resnet34", *ZOO_PROBED):
        torch.manual_seed(0)
        weights = tvm.get_model_weights(name).DEFAULT
        torch.save(tvm.get_model(name, weights=None).state_dict(),
                   checkpoints / os.path.basename(weights.url))
    return home


def files_under(folder):
    return {p.relative_to(folder) for p in folder.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def run_notebook(name, torch_home, runs):
    """Run a notebook from notebooks/, as a learner does; it must write only into ``runs``."""
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    before = files_under(REPO / "notebooks")
    env = {"TORCH_HOME": str(torch_home), "COURSE_FAST": "1", "COURSE_RUNS_DIR": str(runs),
           "COURSE_DATA_MIRROR": str(REPO.parent / "shared" / "datasets")}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(REPO / "notebooks")}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert files_under(REPO / "notebooks") == before, "the notebook wrote into notebooks/"
    assert any(runs.rglob("*.p*")), "the notebook wrote nothing into its runs folder"
    return "\n".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                     for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.slow
def test_notebook_07_runs_its_resnet50_branch(torch_home, tmp_path):
    printed = run_notebook("07_pytorch_finetune_resnet.ipynb", torch_home, tmp_path)
    assert "this run fine-tunes ResNet-50, as the article does" in printed
    assert "ResNet: 25,557,032 parameters" in printed


@pytest.mark.slow
def test_notebook_08_runs_vision_learner_with_resnet34(torch_home, tmp_path):
    printed = run_notebook("08_fastai_finetune.ipynb", torch_home, tmp_path)
    assert "backbone: resnet34" in printed
    assert "3 parameter groups" in printed  # fastai splits a ResNet into three groups


@pytest.mark.slow
def test_notebook_13_probes_the_torchvision_backbones_when_their_weights_can_be_had(torch_home, tmp_path):
    printed = run_notebook("13_tools_and_model_zoo.ipynb", torch_home, tmp_path)
    assert "need a download" not in printed and "needs a download" not in printed
    probe_table = printed[printed.index("EuroSAT probe"):]
    for name in ZOO_PROBED:
        assert name in probe_table
    assert probe_table.count("cached or downloaded") == len(ZOO_PROBED)


def test_a_cached_weights_file_is_used_without_a_download(torch_home, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(torch_home / "hub"))
    assert cu.models.is_available("resnet34") and cu.models.pick_backbone("resnet34") == "resnet34"
