"""Sphinx configuration for the trionet documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``: every warning is
an error.  The build needs no network: no intersphinx, and the theme is Sphinx's own
alabaster.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import trionet  # noqa: E402

project = "trionet"
author = "The trionet developers"
copyright = "the trionet developers"  # noqa: A001
version = trionet.__version__
release = trionet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "lifecycle_table",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
root_doc = "index"
default_role = "py:obj"
pygments_style = "sphinx"

# -- autodoc / napoleon -------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "class"

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
# The docstrings use two extra sections where lifetimes and failures matter.
napoleon_custom_sections = ["Resource handling", "Error handling"]

# -- HTML ---------------------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"trionet {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "4D's event-driven TCP classes on trio",
    "fixed_sidebar": True,
    "show_relbars": True,
}
