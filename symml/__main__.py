"""``python -m symml``: the same as the ``symml`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # not when imported (the doctest collector imports every module)
    sys.exit(main())
