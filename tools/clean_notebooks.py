"""Strip a notebook's metadata down to what a learner and a diff need.

Keeps: cells, their outputs (from a real run), cell tags, Colab's GPU runtime hint. Drops:
execution timing metadata and widget state blobs. Writes the kernelspec (plain ``python3``,
so any environment can run it) and the language info exactly as JupyterLab writes them when
it opens the notebook with this Python: otherwise JupyterLab marks a notebook modified the
moment it is opened (tests/test_browser.py checks this in a real browser).

    python tools/clean_notebooks.py notebooks/*.ipynb
"""

import sys

import nbformat

COLAB_KEYS = ("accelerator", "colab")
# What ipykernel's kernel.json and its kernel_info reply say; JupyterLab copies both into the
# notebook when the kernel starts. The version is this Python's: the one that ran the outputs.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
    "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
    "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
    "version": sys.version.split()[0],
}


def clean_notebook(nb):
    """``nb`` stripped as described above (in place; also returned)."""
    # Colab's runtime hint stays (tools/colab_badges.py writes it); the rest is this machine's.
    kept = {key: nb.metadata[key] for key in COLAB_KEYS if key in nb.metadata}
    nb.metadata = nbformat.NotebookNode({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO,
                                         **kept})
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
    return nb


def clean(path):
    nbformat.write(clean_notebook(nbformat.read(path, as_version=4)), path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        clean(arg)
        print("cleaned", arg)
