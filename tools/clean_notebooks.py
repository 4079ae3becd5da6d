"""Strip a notebook's metadata down to what a learner and a diff need.

Keeps: cells, their outputs (from a real run), cell tags. Drops: execution timing
metadata, widget state blobs, kernel-specific language info. Sets the kernelspec to
plain ``python3`` so any environment can run it.

    python tools/clean_notebooks.py notebooks/*.ipynb
"""

import sys

import nbformat

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(path):
    nb = nbformat.read(path, as_version=4)
    nb.metadata = nbformat.NotebookNode({"kernelspec": KERNELSPEC,
                                         "language_info": {"name": "python"}})
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
        if cell.cell_type == "code":
            for output in cell.outputs:
                # ipywidgets progress bars store a model id that means nothing without the
                # widget state; keep their plain-text fallback only.
                data = output.get("data", {})
                data.pop("application/vnd.jupyter.widget-view+json", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        clean(arg)
        print("cleaned", arg)
