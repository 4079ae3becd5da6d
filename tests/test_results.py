"""The results files of the application notebooks, the README's table written from them, and the
check that the files, the table and the notebooks' stored outputs agree (cu.results,
tools/results_table.py)."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from course_utils import results

REPO = Path(__file__).resolve().parent.parent


def load_tool():
    spec = importlib.util.spec_from_file_location("results_table", REPO / "tools" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(**changes):
    values = dict(dataset="eurosat", method="fine-tuned", metric="accuracy", value=0.981,
                  low=0.975, high=0.986, image_size=64, epochs=5, seconds=612, device="cpu")
    values.update(changes)
    return results.Entry(**values)


@pytest.mark.parametrize("changes, words", [
    (dict(low=0.982), "must hold the value"),
    (dict(value=1.2, high=1.3), "share"),
    (dict(seconds=float("nan")), "finite"),
    (dict(method=""), "non-empty"),
    (dict(image_size=0), "image_size"),
])
def test_an_entry_refuses_what_cannot_be_a_result(changes, words):
    with pytest.raises(ValueError, match=words):
        entry(**changes)


def test_an_entry_outside_zero_one_is_fine_for_a_metric_that_is_not_a_share():
    assert entry(metric="MAE", value=0.61, low=0.55, high=0.70).value == 0.61
    assert entry(metric="MAE", value=1.5, low=1.2, high=1.9).high == 1.9


def test_record_writes_in_full_mode_only_and_prints_what_it_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    entries = [entry(), entry(method="linear probe", value=0.935, low=0.924, high=0.945)]
    assert results.record("10_remote_sensing", entries, fast=True) is None
    assert not (tmp_path / "results").exists()
    printed = capsys.readouterr().out
    assert results.line(entries[0]) in printed and "nothing written" in printed
    written = results.record("10_remote_sensing", entries, fast=False)
    assert written == tmp_path / "results" / "10_remote_sensing.json"
    assert results.load("10_remote_sensing") == entries
    assert list(results.load_all()) == ["10_remote_sensing"]
    assert json.loads(written.read_text())[1]["method"] == "linear probe"


def test_record_refuses_duplicates_and_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="same data set"):
        results.record("10_x", [entry(), entry()], fast=False)
    with pytest.raises(ValueError, match="non-empty list"):
        results.record("10_x", [], fast=False)
    with pytest.raises(ValueError, match="notebook name"):
        results.path("../10_x")


def test_load_refuses_a_file_with_other_fields(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    (tmp_path / "10_x.json").write_text(json.dumps([{"dataset": "eurosat", "value": 0.9}]))
    with pytest.raises(ValueError, match="fields"):
        results.load("10_x")


def test_the_table_has_a_row_per_entry_linking_its_notebook():
    table = results.markdown_table({"10_remote_sensing": [entry()]})
    assert "| [10](notebooks/10_remote_sensing.ipynb) | eurosat | fine-tuned | accuracy | " \
           "0.981 (0.975-0.986) | 64 px | 5 | 612 s | cpu |" in table
    assert "no application notebook" in results.markdown_table({})


def fake_repo(tmp_path, shown):
    """A repository with README markers and one solutions notebook printing `shown`."""
    (tmp_path / "notebooks" / "solutions").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "cu.results.record(...)", outputs=[nbformat.v4.new_output("stream", text=shown)])])
    nbformat.write(nb, tmp_path / "notebooks" / "solutions" / "10_remote_sensing_solutions.ipynb")
    tool = load_tool()
    table = results.markdown_table({"10_remote_sensing": [entry()]})
    (tmp_path / "README.md").write_text(f"# Course\n\n{tool.START}\n{table}\n{tool.END}\n\nmore\n")
    return tool


def test_the_check_finds_a_notebook_that_shows_other_figures(tmp_path):
    tool = fake_repo(tmp_path, results.line(entry()) + "\n")
    assert tool.disagreements(tmp_path, {"10_remote_sensing": [entry()]}) == []
    other = {"10_remote_sensing": [entry(value=0.980)]}
    problems = tool.disagreements(tmp_path, other)
    assert any("does not show" in p for p in problems) and any("stale" in p for p in problems)
    missing = tool.disagreements(tmp_path, {"09_medical_images": [entry()]})
    assert any("no notebook" in p for p in missing)


def test_the_table_is_written_between_the_markers_only():
    tool = load_tool()
    readme = f"intro\n{tool.START}\nold rows\n{tool.END}\noutro\n"
    assert tool.readme_with_table(readme, "| new |") == f"intro\n{tool.START}\n| new |\n{tool.END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        tool.readme_with_table("no markers here", "| new |")


def test_the_repository_files_table_and_notebooks_agree():
    assert load_tool().disagreements() == []
