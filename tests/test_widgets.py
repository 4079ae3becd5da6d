"""cu.widgets: the photo reader, the fallbacks, and the widgets' callbacks driven as a front end
would drive them (the drawing itself is checked in a real browser by tests/test_browser.py)."""

import datetime
import io

import numpy as np
import pytest
from PIL import Image

from course_utils import widgets


def encoded(image, fmt="JPEG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def upload_of(content, name="photo.jpg"):
    return ({"name": name, "type": "image/jpeg", "size": len(content),
             "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC)},)


@pytest.fixture
def in_kernel(monkeypatch):
    """Pretend a kernel with a widget front end runs this: collect (widget, displayed bundle)."""
    pytest.importorskip("ipywidgets")
    shown, bundles = [], []
    display_widget = widgets._display
    monkeypatch.setattr(widgets, "can_show", lambda: True)
    monkeypatch.setattr(widgets, "display", lambda bundle, raw: bundles.append(bundle))
    monkeypatch.setattr(widgets, "_display", lambda widget, text: (
        display_widget(widget, text), shown.append((widget, bundles[-1]))))
    return shown


def test_read_upload_gives_upright_rgb():
    wide = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° to display", as a phone held upright writes it
    image = widgets.read_upload(encoded(wide, exif=exif.tobytes()))
    assert image.mode == "RGB" and image.size == (20, 40)


def test_read_upload_scales_16_bit_grayscale():
    gray = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    image = widgets.read_upload(encoded(gray, "PNG"))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("content, says", [
    (b"%PDF-1.7 not a photo", "not an image"),
    (encoded(Image.new("RGB", (64, 64)))[:200], "damaged or incomplete"),
])
def test_read_upload_refuses_in_one_sentence(content, says):
    with pytest.raises(ValueError, match=says) as err:
        widgets.read_upload(content)
    assert "\n" not in str(err.value)


def test_without_a_kernel_each_widget_prints_how_to_do_it_in_code(capsys):
    def show_rate(rate):
        raise AssertionError("nothing is drawn without a widget")

    def explain(image):
        raise AssertionError("nothing is drawn without a widget")

    widgets.slider([1e-3, 1e-2], show_rate, description="learning rate", format="{:.0e}".format)
    widgets.image_upload(explain)
    printed = capsys.readouterr().out
    assert "show_rate(value) with one of: 1e-03, 1e-02" in printed
    assert "explain(Image.open('your_photo.jpg').convert('RGB'))" in printed


def test_slider_calls_show_with_the_chosen_value(in_kernel):
    seen = []
    widgets.slider([0.1, 1.0, 10.0], seen.append, description="λ")
    ((box, bundle),) = in_kernel
    assert seen == []  # the notebook has drawn the default itself
    box.children[0].value = 10.0
    box.children[0].value = 0.1
    assert seen == [10.0, 0.1]
    assert bundle[widgets.WIDGET_VIEW]["model_id"] == box.model_id
    assert "λ slider" in bundle["text/plain"] and "append(value)" in bundle["text/plain"]


def test_slider_needs_values():
    with pytest.raises(ValueError, match="at least one"):
        widgets.slider([], print, description="x")


def test_upload_hands_an_rgb_image_to_the_notebook(in_kernel):
    seen = []
    widgets.image_upload(seen.append)
    ((box, bundle),) = in_kernel
    box.children[0].value = upload_of(encoded(Image.new("L", (30, 20), 128)))
    assert len(seen) == 1 and seen[0].mode == "RGB" and seen[0].size == (30, 20)
    assert box.children[0].value == ()  # emptied: the same photo can be chosen again
    assert "photo upload" in bundle["text/plain"]


def test_upload_of_a_non_image_says_so_and_calls_nothing(in_kernel, capsys):
    seen = []
    widgets.image_upload(seen.append)
    ((box, bundle),) = in_kernel
    box.children[0].value = upload_of(b"just text", name="notes.txt")
    assert seen == []
    assert "notes.txt: not an image this course can read" in capsys.readouterr().out
