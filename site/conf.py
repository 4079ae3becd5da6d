"""Sphinx configuration of the course website (``make site``; see tools/build_site.py).

The pages are the stored notebooks, rendered with MyST-NB and never executed: the site shows
the outputs of the full runs, exactly as a learner reads them in the repository.
"""

project = "Transfer Learning for Computer Vision"
author = "the course's authors"
extensions = ["myst_nb"]
nb_execution_mode = "off"  # the stored outputs of the full runs, not a new run
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {"show_toc_level": 2}
myst_enable_extensions = ["dollarmath", "colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget views: their text fallback is shown
