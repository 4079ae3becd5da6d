"""The README's results table, written from the application notebooks' results files.

Every file ``results/NN_name.json`` (written by ``cu.results.record`` at the end of a full run of
notebook NN) becomes rows of the table between the two markers in README.md. The check also
asks each notebook's stored output (the solutions notebook, which the full run produced) to
print every entry of its file, so that the file, the table and the notebook cannot disagree.

    python tools/results_table.py           # write the table
    python tools/results_table.py --check   # exit 1 and say what disagrees (tests)
"""

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from course_utils import results  # noqa: E402  (the repository, not an installed copy)

START = "<!-- results table: written by tools/results_table.py from results/*.json -->"
END = "<!-- end of results table -->"


def readme_with_table(readme, table):
    """``readme`` with the text between the markers replaced by ``table``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md needs the two markers once each, in order:\n{START}\n{END}")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def stored_output(notebook_path):
    """All the text a notebook's stored outputs show, one string."""
    nb = nbformat.read(notebook_path, as_version=4)
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def disagreements(repo=REPO, all_results=None):
    """What disagrees between the results files, the README's table and the notebooks."""
    all_results = results.load_all() if all_results is None else all_results
    problems = []
    for notebook, entries in all_results.items():
        source = repo / "notebooks" / "solutions" / f"{notebook}_solutions.ipynb"
        if not source.is_file():
            problems.append(f"results/{notebook}.json: no notebook {source.relative_to(repo)}")
            continue
        shown = stored_output(source)
        problems += [f"{source.name} does not show: {results.line(e)}"
                     for e in entries if results.line(e) not in shown]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    if readme_with_table(readme, results.markdown_table(all_results)) != readme:
        problems.append("README.md: the results table is stale; run python tools/results_table.py")
    return problems


def main(argv):
    if "--check" in argv:
        problems = disagreements()
        print("\n".join(problems) or "results: files, README table and notebooks agree")
        return 1 if problems else 0
    readme_path = REPO / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    readme_path.write_text(readme_with_table(readme, results.markdown_table(results.load_all())),
                           encoding="utf-8")
    print("wrote the results table in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
