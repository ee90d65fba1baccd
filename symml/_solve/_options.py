"""The knobs of a solve, grouped in small immutable objects: `SolveOptions`, `TerminalEvent`.

As in diffrax's ``diffeqsolve``, the mathematics (vector field, initial values, times,
parameters) is positional and everything else is one options object holding diffrax's own
objects: a solver, a step-size controller (``PIDController(rtol=..., atol=...)`` or
``ConstantStepSize()``), an adjoint, ``max_steps``, ``dt0`` and an optional terminal event.
`SolveOptions.build` makes one from the names and numbers that `symml.simulate` takes.

>>> opts = SolveOptions.build("tsit5", rtol=1e-8, atol=1e-10)
>>> type(opts.solver).__name__, opts.controller.rtol, opts.max_steps
('Tsit5', 1e-08, 65536)
>>> SolveOptions.build("euler", dt0=0.01).controller
ConstantStepSize()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import diffrax
import equinox as eqx

from .._mechanics import ImplicitMidpoint, Leapfrog, Yoshida4
from ..errors import InvalidValueError, MissingValueError
from ._rosenbrock import Rodas4

__all__ = [
    "SOLVERS",
    "IMPLICIT",
    "DEFAULT_ADJOINT",
    "SolveOptions",
    "TerminalEvent",
    "get_solver",
    "require_dt0",
    "check_tolerances",
    "resolve_solver",
]

#: Solver names accepted by ``simulate(solver=...)``.
SOLVERS: dict[str, type] = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "bosh3": diffrax.Bosh3,
    "heun": diffrax.Heun,
    "ralston": diffrax.Ralston,
    "midpoint": diffrax.Midpoint,
    "euler": diffrax.Euler,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
    "implicit_euler": diffrax.ImplicitEuler,
    # Rosenbrock (linearly implicit): one factorisation per step, no Newton iterations; symml's
    # runner gives it the model's exact Jacobian in dense blocks (symml._solve._rosenbrock)
    "rodas4": Rodas4,
    # symplectic, fixed steps (symml._mechanics): separable systems, and any H for the midpoint rule
    "leapfrog": Leapfrog,
    "yoshida4": Yoshida4,
    "implicit_midpoint": ImplicitMidpoint,
}
IMPLICIT = ("kvaerno3", "kvaerno4", "kvaerno5", "implicit_euler", "rodas4")
#: Gradients through a solve by default: recursive checkpointing (reverse mode, bounded memory).
DEFAULT_ADJOINT = diffrax.RecursiveCheckpointAdjoint()


def resolve_solver(solver: Any) -> tuple[Hashable, str, bool]:
    """``(key, name, adaptive)`` of a solver name or object, without building the solver.

    Building a diffrax solver costs tens of microseconds (an equinox module), so the per-call
    path of ``simulate`` keys its compiled runners by ``key`` (the lower-case name, or the
    object itself) and builds the solver only when it compiles one.

    Args:
        solver: a name in `SOLVERS` or a diffrax solver object.

    Returns:
        ``key``, the ``name`` used in messages, and whether the solver can adapt its steps.

    Raises:
        ValueError: an unknown name or something that is not a solver.
    """
    if isinstance(solver, diffrax.AbstractSolver):
        return solver, type(solver).__name__, isinstance(solver, diffrax.AbstractAdaptiveSolver)
    if isinstance(solver, str) and solver.lower() in SOLVERS:
        key = solver.lower()
        return key, solver, issubclass(SOLVERS[key], diffrax.AbstractAdaptiveSolver)
    raise ValueError(
        f"Unknown solver {solver!r}. Use one of {', '.join(SOLVERS)}, 'auto', or a diffrax "
        "solver object such as diffrax.Tsit5()."
    )


def get_solver(solver: Any) -> diffrax.AbstractSolver:
    """A diffrax solver from a name in `SOLVERS` or a solver object.

    >>> type(get_solver("kvaerno5")).__name__
    'Kvaerno5'

    Raises:
        ValueError: an unknown name or something that is not a solver.
    """
    key, _, _ = resolve_solver(solver)
    if isinstance(key, diffrax.AbstractSolver):
        return key
    return SOLVERS[str(key)]()


def check_tolerances(rtol: Any, atol: Any) -> None:
    """Raise `InvalidValueError` unless ``rtol`` and ``atol`` are finite numbers >= 0 (not both 0)."""
    for name, v in (("rtol", rtol), ("atol", atol)):
        try:
            ok = not isinstance(v, (str, bool, complex)) and 0 <= float(v) < float("inf")
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidValueError(f"{name} must be a finite number >= 0, got {v!r}.")
    if rtol == 0 and atol == 0:
        raise InvalidValueError("rtol and atol are both 0; the step-size controller needs one of them > 0.")


def require_dt0(name: str, fixed: bool, adaptive: bool, dt0: Any) -> None:
    """Raise `MissingValueError` for fixed steps without a step size ``dt0``."""
    if fixed and dt0 is None:
        why = "takes fixed steps" if adaptive else "was asked for fixed steps (adaptive=False)"
        raise MissingValueError(
            f"Solver {name} {why}: pass dt0, the step size (sm.simulate also takes dt= for fixed steps)."
        )


def step_fits_span(h: float, t0: float, t1: float) -> bool:
    """Whether the first step ``h`` is finite, non-zero and points from ``t0`` to ``t1``."""
    return h != 0 and math.isfinite(h) and (t1 - t0) * h >= 0


def check_dt0(dt0: Any, t0: float, t1: float) -> None:
    """Raise `InvalidValueError` unless ``dt0`` (when given) is a finite, non-zero number that
    points from ``t0`` to ``t1`` (diffrax would stop with a runtime error inside the solve)."""
    if dt0 is None:
        return
    try:
        h = float(dt0)
    except (TypeError, ValueError):
        raise InvalidValueError(f"dt0 must be a number (the first step), got {dt0!r}.") from None
    if step_fits_span(h, t0, t1):
        return
    if not math.isfinite(h) or h == 0:
        raise InvalidValueError(f"dt0 must be a finite, non-zero step, got {h!r}.")
    raise InvalidValueError(
        f"dt0={h!r} points away from t1: the span runs from {t0!r} to {t1!r}; give dt0 the "
        f"sign of t1 - t0 ({'+' if t1 > t0 else '-'}{abs(h)!r})."
    )


class TerminalEvent(eqx.Module):
    """A compiled terminal event: the solve stops where ``fn(t, y, p)[0]`` crosses zero.

    ``direction``: ``True`` for upward crossings, ``False`` for downward, ``None`` for either
    (`symml.Event.rising`). ``tol``: Newton tolerance of the crossing time (``None``:
    1e-12 in float64, 1e-6 in float32).
    """

    fn: Callable
    direction: bool | None = eqx.field(static=True, default=None)
    tol: float | None = eqx.field(static=True, default=None)


class SolveOptions(eqx.Module):
    """Everything of one solve besides the mathematics, as diffrax objects.

    Attributes:
        solver: a diffrax solver.
        controller: a diffrax step-size controller; its tolerances are compile-time constants
            (XLA compiles a fixed-tolerance controller about 30 % faster than a traced one).
        adjoint: how gradients go through the solve.
        max_steps: the step limit; reaching it is an error (`check_result`).
        dt0: the initial (or, for fixed steps, every) step size; ``None`` lets diffrax choose.
        event: a `TerminalEvent` or ``None``.
        detect_stiffness: end the solve where Tsit5's step size becomes stability-limited
            (`symml._solve._switch.StiffnessDetector`; ``CoreSolution.stiff_time`` says when).
    """

    solver: diffrax.AbstractSolver = eqx.field(static=True, default=diffrax.Tsit5())
    controller: diffrax.AbstractStepSizeController = eqx.field(
        static=True, default=diffrax.PIDController(rtol=1e-7, atol=1e-9)
    )
    adjoint: diffrax.AbstractAdjoint = eqx.field(static=True, default=DEFAULT_ADJOINT)
    max_steps: int = eqx.field(static=True, default=65536)
    dt0: Any = None
    event: TerminalEvent | None = None
    detect_stiffness: bool = eqx.field(static=True, default=False)

    @classmethod
    def build(
        cls,
        solver: Any = "tsit5",
        *,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        adaptive: bool = True,
        dt0: float | None = None,
        max_steps: int = 65536,
        adjoint: diffrax.AbstractAdjoint | None = None,
        event: TerminalEvent | None = None,
    ) -> SolveOptions:
        """Options from the names and numbers of `symml.simulate`.

        Args:
            solver: a name in `SOLVERS` or a diffrax solver.
            rtol, atol: tolerances of the adaptive controller.
            adaptive: ``False`` takes fixed steps of size ``dt0``.
            dt0: the initial or fixed step size.
            max_steps: the step limit.
            adjoint: a diffrax adjoint (default `DEFAULT_ADJOINT`).
            event: a `TerminalEvent`.

        Returns:
            The options (fixed steps for solvers that cannot adapt).

        Raises:
            ValueError: an unknown solver.
            MissingValueError: fixed steps without ``dt0``.
            InvalidValueError: ``rtol`` or ``atol`` negative, NaN or infinite.
        """
        check_tolerances(rtol, atol)
        _, name, can_adapt = resolve_solver(solver)
        fixed = not (adaptive and can_adapt)
        require_dt0(name, fixed, adaptive, dt0)
        controller = (
            diffrax.ConstantStepSize() if fixed else diffrax.PIDController(rtol=float(rtol), atol=float(atol))
        )
        return cls(
            solver=get_solver(solver),
            controller=controller,
            adjoint=adjoint if adjoint is not None else DEFAULT_ADJOINT,
            max_steps=int(max_steps),
            dt0=dt0,
            event=event,
        )
