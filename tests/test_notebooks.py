"""Conventions every notebook keeps (nbval runs them; this checks how they are stored)."""

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((REPO / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
ALL = NOTEBOOKS + SOLUTIONS
ANSWER_TAG = "otter_answer_cell"  # what otter assign tags the cells a learner answers with
CHECK_CALL = re.compile(r"\bex\d\d\.\w+\(")  # a call to an exercise check (tools/assign.py)
COLAB_MARK = '# On Colab: fetch the course and install it (this cell does nothing anywhere else).'


def test_there_are_notebooks():
    assert NOTEBOOKS and (REPO / "notebooks" / "00_setup_and_tour.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_solutions_notebook(path):
    assert (path.parent / "solutions" / f"{path.stem}_solutions.ipynb").exists()


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_stored_clean_with_outputs_from_a_run(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata, "widget state blob stored"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # The cells a learner answers, and a check of an answer given in an earlier cell, are
    # stored unrun in the student notebook (tools/assign.py).
    student = path.parent.name != "solutions"
    answers = [c for c in code if ANSWER_TAG in c.metadata.get("tags", [])
               or (student and CHECK_CALL.search(c.source))]
    ran = [c for c in code if not any(c is a for a in answers)]
    assert all(c.execution_count for c in ran), "some code cells were never run"
    assert all(not c.outputs for c in answers), "an answer cell shows an output"
    counts = [c.execution_count for c in ran]
    assert counts == sorted(counts), "cells were run out of order"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"stored error: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    for cell in nb.cells:
        assert set(cell.metadata) <= {"tags"}, f"cell metadata not cleaned: {set(cell.metadata)}"
    assert path.stat().st_size < 3_000_000


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_starts_with_title_colab_cell_and_setup(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.name[:2]} · ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.startswith(COLAB_MARK), "first code cell must be the Colab install cell"
    assert code[0].source == _colab_cell(), "the Colab cell differs from 00's"
    assert "import course_utils as cu" in code[1].source and "cu.env.summary()" in code[1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_summary_and_checked_exercises(path):
    nb = nbformat.read(path, as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    # The exercises are gathered under "## Exercises", or, where a prediction must come before
    # the measurement it predicts (01), placed in the lesson where they belong.
    assert "## Summary" in headings
    assert "## Exercises" in headings or any(line.startswith("**Exercise 1 ") for line in headings)
    module = f"ex{path.name[:2]}"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f"from course_utils.exercises import {module}" in code and f"{module}." in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_ask_to_predict_and_to_change_code(path):
    nb = nbformat.read(path, as_version=4)
    # Exercises sit under "## Exercises" or in the lesson where they belong (01, 02, 10): each
    # prompt opens with "**Exercise N" and says what kind it is.
    prompts = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
               if line.startswith("**Exercise ")]
    assert prompts, "no exercise"
    assert any("(predict first)" in p for p in prompts), "no exercise asks to predict before running"
    assert any("(change the code" in p for p in prompts), "no exercise asks to change code and observe"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_checks_show_no_answer_in_the_student_notebook(path):
    """The checks compute their references at check time: no literal expected value in a call."""
    nb = nbformat.read(path, as_version=4)
    module = f"ex{path.name[:2]}."
    for cell in nb.cells:
        if cell.cell_type == "code" and module in cell.source and "= ..." in cell.source:
            call = cell.source[cell.source.index(module):]
            assert not re.search(r"(?<![\w.])\d", call.replace(module, "")), f"a number in the check: {call}"
            assert "cu.checks.check_" not in cell.source, "use the notebook's exercise module"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_pass_their_checks(path):
    nb = nbformat.read(path, as_version=4)
    shown = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"], ensure_ascii=False)
    assert "✅" in shown and "❌" not in shown


def _colab_cell():
    nb = nbformat.read(REPO / "notebooks" / "00_setup_and_tour.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


LINK = re.compile(r"\]\((?!https?://)([^)\s]+\.ipynb)(?:#[^)]*)?\)")  # relative links; Colab badges are absolute
MENTION = re.compile(r"\bnotebooks? (\d\d)\b")


def _exists(number):
    return any(p.name.startswith(f"{number}_") for p in NOTEBOOKS)


def _markdown_lines(path):
    nb = nbformat.read(path, as_version=4)
    return [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_link_to_a_notebook_resolves(path):
    for line in _markdown_lines(path):
        for target in LINK.findall(line):
            assert (path.parent / target).is_file(), f"{path.name}: broken link {target}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_a_notebook_that_does_not_exist_yet_is_called_planned(path):
    for line in _markdown_lines(path):
        for number in MENTION.findall(line):
            if not _exists(number):
                assert "planned" in line, f"{path.name} mentions notebook {number}: {line!r}"


def test_the_tour_links_every_notebook_that_exists_and_marks_the_rest_planned():
    rows = [line for line in _markdown_lines(REPO / "notebooks" / "00_setup_and_tour.ipynb")
            if re.match(r"\| \d\d(-\d\d)? \|", line)]
    assert len(rows) >= 13
    for row in rows:
        first, last = re.match(r"\| (\d\d)(?:-(\d\d))? \|", row).groups()
        numbers = [f"{n:02d}" for n in range(int(first), int(last or first) + 1)]
        if any(_exists(n) for n in numbers):
            assert LINK.search(row), f"row for an existing notebook without a link: {row}"
        else:
            assert "*(planned)*" in row and not LINK.search(row), row


MACHINE_PATH = re.compile(r"(/site-packages/|/home/\w|/root/|/Users/\w|[A-Z]:\\\\)")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_stored_outputs_show_no_path_of_the_machine_that_ran_them(path):
    # A warning that names a file of the machine that stored the outputs means nothing to a
    # learner (and differs on theirs): quiet it where it is raised, or make the path relative.
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + [v for k, v in output.get("data", {}).items()
                                                if k.startswith("text/") and isinstance(v, str)]
            for text in texts:
                assert str(REPO) not in text and not MACHINE_PATH.search(text), \
                    f"{path.name}, code cell {i}: {text[:200]!r}"


GLOSSARY = REPO / "GLOSSARY.md"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_notebook_links_the_glossary_from_its_first_cell(path):
    first = nbformat.read(path, as_version=4).cells[0].source
    targets = re.findall(r"\]\(([^)\s]*GLOSSARY\.md)\)", first)
    assert targets, f"{path.name}: no link to GLOSSARY.md in the first cell"
    assert (path.parent / targets[0]).resolve() == GLOSSARY


def test_the_glossary_gives_each_term_in_english_and_chinese_and_where_it_is_met():
    rows = [line for line in GLOSSARY.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith("| English")]
    assert len(rows) >= 30
    terms = []
    for row in rows:
        english, chinese, meaning, where = (cell.strip() for cell in row.strip().strip("|").split("|"))
        assert english and meaning and CJK.search(chinese), row
        number = re.match(r"\[?(\d\d)", where).group(1)
        if _exists(number):  # linked once the notebook exists, to the notebook itself
            target = re.fullmatch(r"\[\d\d\]\((notebooks/[^)]+\.ipynb)\)", where).group(1)
            assert (REPO / target).is_file() and Path(target).name.startswith(number), row
        else:
            assert where == f"{number} (planned)", row
        terms.append(english.lower())
    assert len(terms) == len(set(terms)), "a term is listed twice"


def test_the_instructor_guide_gives_each_notebook_its_row_with_the_measured_full_run_time():
    """INSTRUCTORS.md: one row per notebook that exists, linking it, with the full-mode seconds
    that the notebook states at its top (so the two cannot drift apart)."""
    guide = (REPO / "INSTRUCTORS.md").read_text(encoding="utf-8")
    rows = [line for line in guide.splitlines() if re.match(r"\| \[\d\d · ", line)]
    for path in NOTEBOOKS:
        row = next((r for r in rows if f"(notebooks/{path.name})" in r), None)
        assert row, f"INSTRUCTORS.md has no row for {path.name}"
        first = nbformat.read(path, as_version=4).cells[0].source
        stated = re.search(r"Measured run time[^*]*", first).group(0)
        for seconds in re.findall(r"(\d+) s\b", stated):
            assert f"{seconds} s" in row or f"{seconds}-" in row or f"-{seconds}" in row, \
                f"{path.name}: the guide's row lacks the {seconds} s stated in the notebook"
        assert "FAST_" not in row, f"{path.name}: fast-mode time not filled in"


IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|svg|webp|bmp)$", re.I)
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img\b", re.I)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_text_is_baked_into_an_image(path):
    """Every word a learner reads is text a translator can edit: no picture in the prose but
    the Colab badge, no attached images; figures are drawn by code, their labels in the cell."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        assert not cell.get("attachments"), f"{path.name}: an image attached to a cell"
        if cell.cell_type == "markdown":
            for match in MARKDOWN_IMAGE.finditer(cell.source):
                assert match.group(1) == "https://colab.research.google.com/assets/colab-badge.svg", \
                    f"{path.name}: an image in the prose: {match.group(0)}"


def test_the_course_ships_no_picture_files():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    pictures = [name for name in files.stdout.splitlines() if IMAGE_FILE.search(name)]
    assert not pictures, f"pictures in the repository: {pictures}"
