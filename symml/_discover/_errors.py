"""The errors and warnings of `sm.discover`."""

from __future__ import annotations

from ..errors import SymmlError


class DiscoveryError(SymmlError, ValueError):
    """Options of sm.discover that do not fit together (e.g. the weak form with Operon), or
    data from which no candidate model can be integrated."""


class DiscoveryWarning(UserWarning):
    """A discovered model that is doubtful: it does not reproduce its own data, an equation
    came back empty, the library was rank deficient, or the data look like noise."""
