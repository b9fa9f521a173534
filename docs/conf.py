"""Sphinx configuration for the trionet documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``: every warning is
an error.  The build needs no network: no intersphinx, and the theme is Sphinx's own
alabaster.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import trionet  # noqa: E402
import trionet.testing  # noqa: E402

project = "trionet"
author = "The trionet developers"
copyright = "the trionet developers"
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
autoclass_content = "class"
python_use_unqualified_type_names = True

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = False
# The docstrings use two extra sections where lifetimes and failures matter.
napoleon_custom_sections = ["Resource handling", "Error handling"]


_PROSE_BEFORE_COLON = re.compile(r"^(?P<head>[A-Z][^:\[\]]*\s[^:\[\]]*): (?P<rest>\S.*)$")


def _keep_prose_colons(app, what, name, obj, options, lines):
    """Stop napoleon from reading "Some words: more words" as "type: description".

    napoleon treats the text before the first colon of an attribute's or property's
    docstring as its type.  Where that text is several words of prose (a type is one
    expression), the colon is rendered as a dash instead, so the sentence stays whole.
    """
    if what not in ("attribute", "property", "data") or not lines:
        return
    match = _PROSE_BEFORE_COLON.match(lines[0])
    if match:
        lines[0] = f"{match['head']} \N{EM DASH} {match['rest']}"


_PUBLIC = {
    name: f"{module.__name__}.{name}"
    for module in (trionet, trionet.testing)
    for name in module.__all__
    if not name.startswith("_")
}


def _public_target(app, env, node, contnode):
    """Resolve ``trionet._module.Name`` (as type hints spell it) to the public ``trionet.Name``."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("trionet."):
        return None
    parts = target.split(".")
    if not any(part.startswith("_") for part in parts[1:-1]) or parts[-1] not in _PUBLIC:
        return None
    domain = env.get_domain("py")
    public = _PUBLIC[parts[-1]]
    return domain.resolve_xref(
        env, node.get("refdoc", ""), app.builder, node["reftype"], public, node, contnode
    )


def setup(app):
    """Register the docstring fix (before napoleon, at priority 500) and the link fix."""
    app.connect("autodoc-process-docstring", _keep_prose_colons, priority=100)
    app.connect("missing-reference", _public_target)


# -- HTML ---------------------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"trionet {release}"
html_static_path = ["_static"]
html_css_files = ["trionet.css"]
html_theme_options = {
    "description": "4D's event-driven TCP classes on trio",
    "fixed_sidebar": True,
    "show_relbars": True,
}
