"""``python -m symml.cli``: the same as the ``symml`` command."""

import sys

from ._main import main

sys.exit(main())
