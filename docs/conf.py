"""Sphinx configuration for the doqu-tyrant documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "doqu-tyrant"
author = "the doqu-tyrant authors"
copyright = "2026, the doqu-tyrant authors"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
