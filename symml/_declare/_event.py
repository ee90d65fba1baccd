"""`Event`: the declaration of a terminal event (where a solve stops).

An event is part of the problem statement, like the equations (ModelingToolkit declares its
``continuous_events`` with the system): it names *what* crosses zero, not how a solver finds it.
The numeric solve (`symml.simulate`, `symml.solver_fn`) locates it by Newton's method on the
dense solution; the closed-form path locates it on the closed form.

>>> import symml as sm
>>> proj = sm.zoo.projectile()
>>> ground = Event(proj.states[1], direction="down")
>>> ground.direction, ground.rising
('down', False)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sympy as sp

__all__ = ["Event"]

_RISING = {"up": True, "down": False}


@dataclasses.dataclass(frozen=True)
class Event:
    """A terminal event: the solve stops where ``expr`` crosses zero.

    Args:
        expr: a SymPy expression of states, parameters and ``t`` (e.g. ``y`` for "hits the
            ground"); a name must be resolved first with ``model.lookup(name)``.
        direction: ``"down"`` (positive to negative), ``"up"``, or ``None`` for either.

    Raises:
        ValueError: ``direction`` is not one of the three.
        TypeError: ``expr`` is a string (symml never parses strings into expressions), or not a
            real SymPy expression.

    The crossing time is differentiable with respect to parameters and initial values.

    Examples:
        >>> import symml as sm
        >>> proj = sm.zoo.projectile(drag="stokes")
        >>> ground = sm.Event(proj.lookup("y"), direction="down")
        >>> ground.expr, ground.direction, ground.rising
        (y(t), 'down', False)
        >>> sm.Event("y")
        Traceback (most recent call last):
            ...
        TypeError: Event needs a SymPy expression, got the string 'y'; ...
    """

    expr: Any
    direction: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in (None, "up", "down", "both"):
            raise ValueError(f"Event direction must be 'up', 'down' or None (either), got {self.direction!r}")
        if isinstance(self.expr, str):
            raise TypeError(
                f"Event needs a SymPy expression, got the string {self.expr!r}; pass the state itself "
                "(e.g. y) or model.lookup(name)."
            )
        try:
            expr = sp.sympify(self.expr, strict=True)
        except sp.SympifyError:
            raise TypeError(
                f"Event needs a SymPy expression of the states (e.g. y), got "
                f"{type(self.expr).__name__}: {self.expr!r}."
            ) from None
        if not isinstance(expr, sp.Expr) or expr.has(sp.I):
            raise TypeError(
                f"Event needs a real SymPy expression whose zero crossing stops the solve (e.g. y), "
                f"got {expr!r}."
            )
        object.__setattr__(self, "expr", expr)

    @property
    def rising(self) -> bool | None:
        """``True`` for upward crossings only, ``False`` for downward only, ``None`` for either."""
        return _RISING.get(self.direction or "")
