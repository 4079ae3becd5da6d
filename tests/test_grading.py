"""One source per notebook (INSTRUCTORS.md, "Handing out and grading").

The solutions notebook is the source; ``tools/assign.py`` generates the student notebook from
it with otter-grader. These tests generate every student notebook and compare it with the one
committed, check that no answer and no hidden test reaches a learner, run notebook 00's
student version unanswered, and grade made-up submissions of 00 with ``otter run``: all
correct, all wrong, one broken cell.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

import course_utils as cu

REPO = cu.env.REPO_ROOT
SPEC = importlib.util.spec_from_file_location("assign", REPO / "tools" / "assign.py")
ASSIGN = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ASSIGN)
SOURCES = ASSIGN.sources()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Each source's name: (the student notebook generated now, otter's autograder zip)."""
    made = {}
    for source in SOURCES:
        workdir = tmp_path_factory.mktemp(source.name[:2])
        made[source.name] = ASSIGN.student_notebook(source, workdir)
    return made


def questions(source):
    """The source's exercises as otter reads them: [(answer cells, hidden test cells)]."""
    found, block = [], None
    for cell in nbformat.read(source, as_version=4).cells:
        if cell.cell_type == "raw":
            marker = cell.source.splitlines()[0]
            if marker == "# BEGIN QUESTION":
                found.append(([], []))
            block = {"# BEGIN SOLUTION": 0, "# BEGIN TESTS": 1}.get(marker)
        elif block is not None and cell.cell_type == "code":
            found[-1][block].append(cell.source)
    return found


def test_there_is_a_source_for_every_notebook():
    students = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert students == sorted(ASSIGN.student_path(s).name for s in SOURCES)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_the_committed_student_notebook_is_the_one_generated_from_its_source(source, generated):
    student, _ = generated[source.name]
    committed = ASSIGN.student_path(source).read_text(encoding="utf-8")
    assert committed == ASSIGN.as_text(student), \
        f"{ASSIGN.student_path(source).name} differs from its source: run python tools/assign.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_every_exercise_is_a_question_with_an_answer_and_hidden_tests_only(source, generated):
    student, autograder = generated[source.name]
    prompts = [c for c in student.cells if c.cell_type == "markdown"
               and re.match(r"\*\*Exercise \d", c.source)]
    found = questions(source)
    assert len(found) == len(prompts) > 0
    for answers, tests in found:
        assert answers and tests
        assert all(t.startswith("# HIDDEN\n") for t in tests), "a test a learner would see"
    names = "\n".join(zipfile.ZipFile(autograder).namelist())
    assert sorted(re.findall(r"tests/(exercise_\d+)\.py", names)) == \
        sorted(f"exercise_{k + 1}" for k in range(len(found)))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_the_student_notebook_holds_no_answer_explanation_or_hidden_test(source, generated):
    student, _ = generated[source.name]
    text = "\n".join(c.source for c in student.cells)
    for mark in ("# HIDDEN", "SOLUTION", "# BEGIN", "**Solution ", "ASSIGNMENT CONFIG"):
        assert mark not in text
    answer_cells = [c for c in student.cells if ASSIGN.ANSWER_TAG in c.metadata.get("tags", [])]
    for cell, (answers, tests) in zip(answer_cells, questions(source), strict=True):
        assert "..." in cell.source and not cell.outputs
        for line in answers[-1].splitlines():
            if line.rstrip().endswith("# SOLUTION"):  # the answer is gone, the name stays
                code = line.removesuffix("# SOLUTION").rstrip()
                assert code not in cell.source.splitlines(), code
                name = re.match(r"(\s*[\w.]+) = ", code)
                assert not name or f"{name.group(1)} = ..." in cell.source.splitlines(), code
        for test in tests:
            assert test.splitlines()[-1] not in text
    for cell in student.cells:  # a check's stored output would be feedback on the solution
        if cell.cell_type == "code" and re.search(r"\bex\d\d\.\w+\(", cell.source):
            assert not cell.outputs, cell.source
    heading = student.cells[0].source.splitlines()[0]
    assert heading.startswith(f"# {source.name[:2]} · ") and "solutions" not in heading


def test_links_are_rebased_from_the_solutions_folder():
    assert ASSIGN.rebase_link("../../GLOSSARY.md") == "../GLOSSARY.md"
    assert ASSIGN.rebase_link("../07_pytorch_finetune_resnet.ipynb#saving") == \
        "07_pytorch_finetune_resnet.ipynb#saving"


# ----- notebook 00, executed and graded ----------------------------------------------------

# Made-up answers for notebook 00, one per exercise: wrong the way learners get them wrong
# (INSTRUCTORS.md, "Mistakes learners make"), and a cell that raises.
WRONG_00 = [
    "num_imagenet_classes = 1280\nex00.num_classes(num_imagenet_classes, model)",
    "x4 = torch.stack([x] * 4)\nex00.batch_of_four(x4, x)",
    "predicted_trainable = 1280 * 10\nex00.trainable_prediction(predicted_trainable)",
    # the cell above left unchanged: the probability with Normalize
    'espresso_without_normalize = coffee_probs[imagenet_classes.index("espresso")].item()\n'
    "ex00.espresso_without_normalize(espresso_without_normalize)",
]
BROKEN_00 = "x4 = x.repeat(4, 1, 1)  # one dimension short: RuntimeError\nex00.batch_of_four(x4, x)"


@pytest.fixture(scope="module")
def notebook_00(generated, shared_mirror):
    source = next(s for s in SOURCES if s.name.startswith("00_"))
    student, autograder = generated[source.name]
    env = dict(os.environ, COURSE_FAST="1", COURSE_DATA_MIRROR=str(shared_mirror))
    return source, student, autograder, env


def submission(student, answers):
    """A copy of ``student`` with its answer cells replaced by ``answers`` (None: unanswered)."""
    nb = nbformat.from_dict(student)
    cells = [c for c in nb.cells if ASSIGN.ANSWER_TAG in c.metadata.get("tags", [])]
    for cell, answer in zip(cells, answers, strict=True):
        if answer is not None:
            cell.source = answer
    return nb


def grade(nb, autograder, env, tmp_path):
    """``otter run`` on ``nb``, as an instructor runs it: {question: score}, and the total."""
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run([sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(autograder),
                           "-o", str(tmp_path), str(path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    scores = {t["name"]: t["score"] for t in results["tests"] if "score" in t}
    return scores, sum(scores.values())


def test_00_unanswered_runs_to_the_end_and_says_what_is_left(notebook_00, tmp_path):
    _, student, _, env = notebook_00
    nb = nbformat.from_dict(student)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    for cell in nb.cells:
        if ASSIGN.ANSWER_TAG in cell.metadata.get("tags", []):
            shown = json.dumps(cell.outputs)
            assert "not answered yet: replace `...`" in shown and "Traceback" not in shown, shown


def test_00_all_correct_gets_every_point(notebook_00, tmp_path):
    source, student, autograder, env = notebook_00
    answers = [a[0][-1] for a in questions(source)]
    scores, total = grade(submission(student, answers), autograder, env, tmp_path)
    assert scores == {f"exercise_{k}": 1.0 for k in range(1, 5)} and total == 4


def test_00_all_wrong_gets_no_point_and_still_runs(notebook_00, tmp_path):
    _, student, autograder, env = notebook_00
    scores, total = grade(submission(student, WRONG_00), autograder, env, tmp_path)
    assert len(scores) == 4 and total == 0


def test_00_a_broken_cell_costs_its_exercise_only(notebook_00, tmp_path):
    source, student, autograder, env = notebook_00
    answers = [a[0][-1] for a in questions(source)]
    answers[1] = BROKEN_00
    scores, total = grade(submission(student, answers), autograder, env, tmp_path)
    assert scores["exercise_2"] == 0 and total == 3
