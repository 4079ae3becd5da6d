"""The student notebooks, generated from their solutions notebooks with otter-grader.

Each solutions notebook ``notebooks/solutions/NN_name_solutions.ipynb`` is the one source of
its notebook: the whole lesson, every exercise answered, and the hidden tests an instructor
grades with, marked up in Otter Assign's format (raw cells ``# BEGIN QUESTION``,
``# BEGIN SOLUTION``, ``# BEGIN TESTS``; answer lines ending in ``# SOLUTION``). ``otter
assign`` writes the student version: answers replaced by ``...``, explanations and hidden
tests removed. This script then gives it what otter leaves out, so that the two cannot drift:

* the stored outputs of every cell the learner gets unchanged, copied from the source's full
  run (otter clears them all); the cells a learner answers, and the cells that call an
  exercise's check on an answer given earlier, keep no output;
* the title without " — solutions", relative links re-based from ``notebooks/solutions/`` to
  ``notebooks/``, its own Colab badge, and the metadata cleaned as ``tools/clean_notebooks.py``
  does.

    python tools/assign.py                    # write notebooks/NN_*.ipynb from their sources
    python tools/assign.py --check            # exit 1 naming each one that differs (tests)
    python tools/assign.py --autograder DIR   # also keep otter's autograder zips in DIR
    python tools/assign.py 05 07              # only these notebooks

An instructor grades a learner's notebook with the zip: ``otter run -a ZIP NOTEBOOK``
(INSTRUCTORS.md, "Handing out and grading").
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
ANSWER_TAG = "otter_answer_cell"  # otter's tag on the cells a learner answers
LINK = re.compile(r"(\]\()(?!https?://|#)([^)\s]+)(\))")  # a relative Markdown link target


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BADGES, CLEAN = _tool("colab_badges"), _tool("clean_notebooks")


def sources():
    return sorted(SOLUTIONS.glob("[0-9][0-9]_*_solutions.ipynb"))


def student_path(source):
    return NOTEBOOKS / source.name.replace("_solutions.ipynb", ".ipynb")


def run_otter_assign(source, workdir):
    """otter assign on a copy of ``source`` named as the student notebook: (notebook, zip)."""
    master = Path(workdir) / student_path(source).name
    shutil.copyfile(source, master)
    result = Path(workdir) / "dist"
    done = subprocess.run([sys.executable, "-m", "otter", "assign", "--no-run-tests", "--no-pdfs",
                           str(master), str(result)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"otter assign failed on {source.name}:\n{done.stdout}{done.stderr}")
    student = nbformat.read(result / "student" / master.name, as_version=4)
    return student, next((result / "autograder").glob("*.zip"))


# A call to an exercise check (``ex01.scratch_prediction(...)``) outside an answer cell: its
# stored output is feedback on the solution's answer, which the learner has not given.
CHECK_CALL = re.compile(r"\bex\d\d\.\w+\(")


def copy_outputs(student, source):
    """Each student cell that is a source cell unchanged gets that cell's stored outputs, except
    a cell that calls an exercise check: it stays empty until the learner runs it."""
    kept = [c for c in source.cells if c.cell_type != "raw"]
    position = 0
    for cell in student.cells:
        if ANSWER_TAG in cell.metadata.get("tags", []):
            continue  # the learner's to answer: no output until they run it
        match = next((i for i in range(position, len(kept))
                      if kept[i].cell_type == cell.cell_type and kept[i].source == cell.source), None)
        if match is None:
            raise ValueError(f"a cell otter changed that is not an answer: {cell.source[:80]!r}")
        if cell.cell_type == "code" and not CHECK_CALL.search(cell.source):
            cell.outputs, cell.execution_count = kept[match].outputs, kept[match].execution_count
        position = match + 1


def rebase_link(target):
    """A link written for ``notebooks/solutions/``, pointing at the same file from ``notebooks/``."""
    path, hash_, anchor = target.partition("#")
    moved = os.path.relpath(os.path.normpath(SOLUTIONS / path), NOTEBOOKS)
    return Path(moved).as_posix() + hash_ + anchor


def student_notebook(source_path, workdir):
    """The student notebook generated from ``source_path``, and otter's autograder zip."""
    source = nbformat.read(source_path, as_version=4)
    student, autograder = run_otter_assign(source_path, workdir)
    copy_outputs(student, source)
    for cell in student.cells:
        if cell.cell_type == "markdown":
            cell.source = LINK.sub(lambda m: m[1] + rebase_link(m[2]) + m[3], cell.source)
    heading, newline, rest = student.cells[0].source.partition("\n")
    student.cells[0].source = heading.removesuffix(" — solutions") + newline + rest
    student.metadata = source.metadata
    student = BADGES.with_badges(student, student_path(source_path).relative_to(REPO).as_posix())
    return CLEAN.clean_notebook(student), autograder


def as_text(nb):
    """The notebook's file contents, as ``nbformat.write`` writes them."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def main(argv):
    check = "--check" in argv
    keep = Path(argv[argv.index("--autograder") + 1]) if "--autograder" in argv else None
    wanted = [a for a in argv if re.fullmatch(r"\d\d", a)]
    chosen = [s for s in sources() if not wanted or s.name[:2] in wanted]
    differ = []
    for source in chosen:
        target = student_path(source)
        with tempfile.TemporaryDirectory() as workdir:
            student, autograder = student_notebook(source, workdir)
            if keep:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(autograder, keep / f"{target.stem}-autograder.zip")
        text = as_text(student)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            differ.append(target.relative_to(REPO).as_posix())
            if not check:
                target.write_text(text, encoding="utf-8")
    if check and differ:
        print(f"student notebooks differ from their sources: {', '.join(differ)}; "
              "run python tools/assign.py")
        return 1
    print(f"{'checked' if check else 'wrote'} {len(chosen)} student notebooks"
          + ("" if check else f" ({len(differ)} changed)")
          + (f"; autograder zips in {keep}" if keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
