"""The ``symml`` command line: ``demo``, ``show``, ``simulate``, ``discover``, ``bench``."""

from ._main import main as main

__all__ = ["main"]
