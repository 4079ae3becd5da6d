"""Widgets that teach, each with a printed fallback (notebooks 00, 07, 08).

Two widgets, both thin: the notebook computes what is shown, the widget only chooses.

* :func:`slider` picks one of several precomputed values (learning rates, penalty weights)
  and redraws a figure for it;
* :func:`image_upload` takes a learner's photo and hands it, as an RGB image, to a function
  of the notebook (a prediction, a Grad-CAM).

A widget needs ipywidgets in the kernel and a front end that draws widgets (JupyterLab,
Notebook 7, VS Code, Colab). Where one is missing the learner still gets the content:

* no ipywidgets, or no kernel (a script): the function prints how to do the same in code;
* a front end that cannot draw widgets (a static page, GitHub, the stored notebooks, whose
  widget views ``tools/clean_notebooks.py`` removes because their state is not stored) shows
  the widget's plain-text form, one sentence saying what it is and how to use it.

The notebooks always draw the static result themselves first (a table, a figure for the
default choice), so every stored output and the website show it; the widget is for exploring.
"""

import io

import matplotlib.pyplot as plt
from PIL import Image, ImageOps, UnidentifiedImageError

from course_utils.data.images import to_rgb

try:
    import ipywidgets
    from IPython import get_ipython
    from IPython.display import display
except ImportError:  # no widget library here: every widget prints its fallback
    ipywidgets = None

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_TYPES = "image/*"


def can_show():
    """True where a widget can appear: ipywidgets is installed and this runs in a kernel."""
    return ipywidgets is not None and getattr(get_ipython(), "kernel", None) is not None


def _display(widget, text):
    """Display ``widget``; a front end that cannot draw it shows ``text`` instead of a repr."""
    bundle = widget._repr_mimebundle_()  # ipywidgets' own bundle: {text/plain, widget view}
    display({WIDGET_VIEW: bundle[WIDGET_VIEW], "text/plain": text}, raw=True)


def _run_into(output, function, *args):
    """Call ``function(*args)`` with what it prints and draws going into ``output``."""
    output.clear_output(wait=True)
    with output:
        function(*args)
        plt.show()  # a figure drawn in a callback is not shown on its own


def slider(values, show, *, description, format=str):
    """A slider over ``values`` that calls ``show(value)`` and shows its output below.

    ``format`` turns a value into the slider's label (``"{:.0e}".format`` for learning rates).
    Where no widget can be shown it prints how to call ``show`` instead. Nothing is drawn until
    the slider moves: the notebook has drawn the default already. Returns nothing, so that a
    notebook cell ending with this call shows the widget once."""
    values = list(values)
    if not values:
        raise ValueError("slider needs at least one value")
    name = getattr(show, "__name__", "show")
    if not can_show():
        print(f"(No widgets here. To see another {description}, call {name}(value) with one of: "
              f"{', '.join(format(v) for v in values)}.)")
        return
    choice = ipywidgets.SelectionSlider(options=[(format(v), v) for v in values],
                                        description=description,
                                        style={"description_width": "initial"},
                                        layout=ipywidgets.Layout(width="480px"))
    output = ipywidgets.Output()
    choice.observe(lambda change: _run_into(output, show, change["new"]), names="value")
    _display(ipywidgets.VBox([choice, output]), f"[A {description} slider: run this cell in JupyterLab, Notebook 7, VS Code or "
                  f"Colab to move it; or call {name}(value) with one of: "
                  f"{', '.join(format(v) for v in values)}.]")


def read_upload(content):
    """The bytes of an uploaded file as an upright 8-bit RGB image (phones store the
    rotation in EXIF), or a ``ValueError`` that says in one sentence why not."""
    try:
        with Image.open(io.BytesIO(bytes(content))) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ValueError(f"not an image this course can read ({type(err).__name__}); "
                         "try a JPEG or PNG photo") from None
    except (OSError, SyntaxError) as err:  # a truncated or damaged file
        raise ValueError(f"the file is damaged or incomplete ({err}); try another photo") from None


def image_upload(on_image, *, description="Upload a photo"):
    """A button that opens a photo of the learner's and calls ``on_image(image)`` (RGB PIL).

    What ``on_image`` prints and draws appears below the button; a file that is not an image
    gets one sentence, not a traceback. Where no widget can be shown it prints how to call
    ``on_image`` on a file instead. Returns nothing."""
    name = getattr(on_image, "__name__", "on_image")
    how = f"{name}(Image.open('your_photo.jpg').convert('RGB'))"
    if not can_show():
        print(f"(No widgets here. To try a photo of your own, call {how}.)")
        return
    upload = ipywidgets.FileUpload(accept=IMAGE_TYPES, multiple=False, description=description,
                                   layout=ipywidgets.Layout(width="220px"))
    output = ipywidgets.Output()

    def on_change(change):
        if not change["new"]:
            return
        uploaded = change["new"][0]
        upload.value = ()  # let go of the bytes; choosing the same photo again works
        try:
            image = read_upload(uploaded["content"])
        except ValueError as err:
            _run_into(output, print, f"{uploaded['name']}: {err}")
            return
        _run_into(output, on_image, image)

    upload.observe(on_change, names="value")
    _display(ipywidgets.VBox([upload, output]), f"[A photo upload button: run this cell in JupyterLab, Notebook 7, VS Code or "
                  f"Colab to use it; or call {how}.]")
