"""The binder (`symml._declare._bind`) with the model's default values bound once.

Binding the defaults of a model costs microseconds per derivative state (SymPy compares
``Derivative`` keys structurally), and ``simulate`` binds them on every call that leaves
``params`` or ``ics`` out. The defaults-only bindings are therefore kept as an artefact of kind
``"binding"``; bindings with values given are made afresh by the binder.

>>> import symml as sm
>>> proj = sm.zoo.projectile()
>>> pvals, yvals = bind(proj, None, {proj.states[3]: 10.0})
>>> pvals, yvals[3]
((9.81, 0.45, 7.26), 10.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._declare._bind import bind_ics, bind_params
from ..errors import MissingValueError
from ._cache import artefact

__all__ = ["bind"]


class _Defaults:
    """``params`` and ``ics`` bound from the defaults alone (``None`` where one is missing)."""

    __slots__ = ("params", "ics")

    def __init__(self, model: Any) -> None:
        self.params = _try(bind_params, model)
        self.ics = _try(bind_ics, model)


def _try(binder, model) -> tuple | None:
    try:
        return tuple(binder(model, None))
    except MissingValueError:
        return None  # bound again (and the error raised) by the caller that needs it


def bind(
    model: Any, params: Mapping[Any, Any] | None, ics: Mapping[Any, Any] | None
) -> tuple[Sequence[Any], Sequence[Any]]:
    """``(bind_params(model, params), bind_ics(model, ics))``, the defaults-only ones cached.

    Raises:
        MissingValueError: as `symml._declare._bind.bind_params` and ``bind_ics``.
        UnknownNameError: a key is not a state or parameter of the model.
    """
    if params and ics:
        return bind_params(model, params), bind_ics(model, ics)
    defaults = artefact(model, "binding", "defaults", lambda: _Defaults(model))
    pvals = bind_params(model, params) if params or defaults.params is None else defaults.params
    yvals = bind_ics(model, ics) if ics or defaults.ics is None else defaults.ics
    return pvals, yvals
