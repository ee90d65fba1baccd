"""The option objects of `symml.train`: small, immutable, validated, JSON-serialisable.

Every knob of a training run that is not the model, the data or what is trained lives in one of
these objects, grouped by what it configures (as diffrax groups a solve's knobs in ``SaveAt``,
``PIDController``, ...):

* the optimiser phases: `Adam`, `AdamW`, `Optax` (any optax transformation) or `LBFGS` first,
  then an `LBFGS` polish;
* the objective: `Loss` (data misfit, weight penalties, the loss at which training stops);
* how predictions are computed: `Solve` (solver, tolerances, step limit, adjoint), optionally
  with `Shooting` (multiple shooting);
* where the run is saved: `Checkpoint`.

Each object checks its fields when it is built (the error names the field, what came in and
what to pass), compares by value, and writes itself as JSON with `to_json`; `option_from_json`
reads it back. A checkpoint stores the options this way, and resuming compares them.

The phases are in `symml._train._phases`; this module holds the others.

>>> import symml as sm
>>> option_from_json(sm.Solve(shooting=sm.Shooting(4)).to_json()) == sm.Solve(shooting=sm.Shooting(4))
True
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import diffrax

from .._solve import resolve_solver
from ._option_base import Option, int_at_least, is_int, is_number, non_negative
from ._phases import LBFGS, Adam, AdamW, Optax

__all__ = [
    "Loss",
    "Solve",
    "Shooting",
    "Checkpoint",
    "ADJOINTS",
    "LOSSES",
    "option_from_json",
    "as_loss",
    "as_solve",
]

#: Adjoints by name: how gradients go through the ODE solve.
ADJOINTS = ("checkpoint", "backsolve", "forward")
#: Named data misfits of `Loss`.
LOSSES = ("mse",)


# ----------------------------------------------------------------------------- objective


@dataclasses.dataclass(frozen=True)
class Loss(Option):
    """The training objective: data misfit plus weight penalties, and when it is low enough.

    The loss is ``misfit + l1 * sum|W| + l2 * sum W^2`` over the networks' weight matrices
    (not the biases); with multiple shooting the continuity penalty of `Shooting` is added.
    ``loss="mse"`` or ``loss=callable`` in `symml.train` mean ``Loss("mse")`` / ``Loss(callable)``.

    Args:
        fn: ``"mse"`` (mean squared error over every observed value) or a callable
            ``loss(pred, target, weights) -> scalar`` on arrays of shape (rows, times, keys),
            ``weights`` being 1 where a value is observed and 0 elsewhere.
        l1: penalty weights on the network weight matrices.
        l2: penalty weights on the network weight matrices.
        target_loss: stop as soon as the training loss is at or below this level, in either
            phase (early stopping); the parameters returned are those that reached it. With noisy
            data the noise variance is a natural target: a lower loss fits the noise.

    Raises:
        ValueError: an unknown misfit name, a negative penalty or a target that is not positive.

    >>> import symml as sm
    >>> sm.Loss(l2=1e-4, target_loss=2.5e-3)
    Loss(fn='mse', l1=0.0, l2=0.0001, target_loss=0.0025)
    """

    fn: str | Callable[..., Any] = "mse"
    l1: float = 0.0
    l2: float = 0.0
    target_loss: float | None = None

    def __post_init__(self) -> None:
        if not (callable(self.fn) or self.fn in LOSSES):
            raise ValueError(
                f"Loss(fn={self.fn!r}): loss must be one of {LOSSES} or a callable "
                f"loss(pred, target, weights) -> scalar, got {self.fn!r}."
            )
        for name in ("l1", "l2"):
            why = f"the weight of the penalty {name} * sum {'|W|' if name == 'l1' else 'W^2'}"
            object.__setattr__(self, name, non_negative("Loss", name, getattr(self, name), why))
        target = self.target_loss
        if target is not None:
            if not (is_number(target) and math.isfinite(target) and target > 0):
                raise ValueError(
                    f"Loss(target_loss={target!r}): target_loss must be a positive number (e.g. the noise "
                    f"variance of the data) or None, got {target!r}."
                )
            object.__setattr__(self, "target_loss", float(target))

    @property
    def penalised(self) -> bool:
        """Whether a weight penalty is on."""
        return bool(self.l1 or self.l2)


# ----------------------------------------------------------------------------- solve


@dataclasses.dataclass(frozen=True)
class Shooting(Option):
    """Multiple shooting: each trajectory cut into segments that start from learned states.

    Segment ``j`` of a trajectory of ``n`` samples runs between the samples ``round(j (n-1) / S)``
    and ``round((j+1) (n-1) / S)``; segment 0 starts from the initial values, the others from
    learned nodes (started at the data), and the loss adds
    ``continuity * mean((end of segment j - node j+1)^2)``. It helps on long or chaotic series,
    where one solve from ``t0`` has a rugged loss. ``solve=sm.Shooting(...)`` in `symml.train`
    means ``Solve(shooting=Shooting(...))``.

    Args:
        segments: segments per trajectory (1 is the plain single-shooting solve).
        continuity: weight of the penalty on the jumps between segments.

    Raises:
        ValueError: ``segments`` is not an int >= 1, or ``continuity`` is negative.

    >>> import symml as sm
    >>> sm.Shooting(4)
    Shooting(segments=4, continuity=100.0)
    """

    segments: int
    continuity: float = 100.0

    def __post_init__(self) -> None:
        if not is_int(self.segments) or self.segments < 1:
            raise ValueError(
                f"Shooting(segments={self.segments!r}): segments must be a number of segments (an int >= 2; "
                f"1 is the plain solve), got {self.segments!r}."
            )
        object.__setattr__(self, "segments", int(self.segments))
        why = "the weight of the penalty on jumps between segments"
        object.__setattr__(self, "continuity", non_negative("Shooting", "continuity", self.continuity, why))


@dataclasses.dataclass(frozen=True)
class Solve(Option):
    """How the model is solved for the training loss: solver, tolerances, step limit, adjoint.

    Args:
        solver: a solver name of `symml.simulate` (default ``"tsit5"``) or a diffrax solver.
        rtol: tolerances of the adaptive step-size controller.
        atol: tolerances of the adaptive step-size controller.
        max_steps: solver steps per trajectory (or segment) at most; more is a failed solve,
            which training treats as a NaN step.
        adjoint: ``"checkpoint"`` (default; discretise-then-optimise, exact gradients of the
            discrete solve), ``"backsolve"`` (the continuous adjoint solved backwards, O(1)
            memory), ``"forward"`` (forward mode; for few trained values) or a diffrax adjoint.
        shooting: a `Shooting` for multiple shooting, or None (one solve per trajectory).

    Raises:
        ValueError: an unknown solver or adjoint, non-positive tolerances, ``max_steps`` < 16, or
            ``shooting`` that is not a `Shooting`.

    >>> import symml as sm
    >>> sm.Solve(rtol=1e-8, atol=1e-10, adjoint="backsolve").adjoint
    'backsolve'
    """

    solver: str | diffrax.AbstractSolver = "tsit5"
    rtol: float = 1e-6
    atol: float = 1e-8
    max_steps: int = 4096
    adjoint: str | diffrax.AbstractAdjoint = "checkpoint"
    shooting: Shooting | None = None

    def __post_init__(self) -> None:
        resolve_solver(self.solver)  # an unknown name raises here, with the list of solvers
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not (is_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Solve({name}={value!r}): rtol and atol must be positive, got {name}={value!r}; "
                    "e.g. Solve(rtol=1e-6, atol=1e-8)."
                )
            object.__setattr__(self, name, float(value))
        steps = int_at_least("Solve", "max_steps", self.max_steps, 16, "solver steps per trajectory")
        object.__setattr__(self, "max_steps", steps)
        if not (isinstance(self.adjoint, diffrax.AbstractAdjoint) or self.adjoint in ADJOINTS):
            raise ValueError(
                f"Solve(adjoint={self.adjoint!r}): adjoint must be one of {ADJOINTS} (or a diffrax adjoint "
                f"object), got {self.adjoint!r}. 'checkpoint' differentiates the discrete solve (exact "
                "gradients, default), 'backsolve' solves the continuous adjoint backwards (O(1) memory), "
                "'forward' uses forward mode (few parameters)."
            )
        if self.shooting is not None and not isinstance(self.shooting, Shooting):
            raise ValueError(
                f"Solve(shooting={self.shooting!r}): shooting must be an sm.Shooting(segments=...) or None; "
                f"e.g. Solve(shooting=sm.Shooting(segments={self.shooting!r}))."
            )

    @property
    def segments(self) -> int:
        """Segments per trajectory (1 without multiple shooting)."""
        return 1 if self.shooting is None else self.shooting.segments

    @property
    def continuity(self) -> float:
        """Weight of the continuity penalty (0 without multiple shooting)."""
        return 0.0 if self.shooting is None else self.shooting.continuity


def as_loss(loss: Any) -> Loss:
    """``loss`` as a `Loss`: a misfit name or callable means ``Loss(loss)``.

    >>> as_loss("mse") == Loss()
    True

    Raises:
        ValueError: ``loss`` is none of these.
    """
    return loss if isinstance(loss, Loss) else Loss(loss)


def as_solve(solve: Any) -> Solve:
    """``solve`` as a `Solve`: a `Shooting` means ``Solve(shooting=...)``.

    >>> as_solve(Shooting(3)).segments
    3

    Raises:
        ValueError: ``solve`` is neither a `Solve` nor a `Shooting`.
    """
    if isinstance(solve, Shooting):
        return Solve(shooting=solve)
    if not isinstance(solve, Solve):
        raise ValueError(
            f"solve must be an sm.Solve(solver=..., rtol=..., ...) or an sm.Shooting(segments=...), "
            f"got {solve!r}."
        )
    return solve


# ----------------------------------------------------------------------------- checkpoints


@dataclasses.dataclass(frozen=True)
class Checkpoint(Option):
    """Write the training state to a JSON file as it runs, and optionally continue from it.

    The file is a `symml.Trained` (``sm.load`` reads it) plus the exact state of the run:
    parameters, optimiser and L-BFGS state, progress, and these options. Resuming continues
    bit-exactly where the run stopped; it requires the same options (step counts and
    ``target_loss`` may change). Files are replaced atomically.

    Args:
        path: the JSON file.
        every: iterations between writes (and one at the end).
        resume: continue from ``path`` if the file exists.

    Raises:
        ValueError: ``path`` is not a file path, or ``every`` is not an int >= 1.

    >>> import symml as sm
    >>> sm.Checkpoint("run.json", every=200, resume=True)
    Checkpoint(path='run.json', every=200, resume=True)
    """

    path: str | os.PathLike
    every: int = 500
    resume: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            need = "resume=True needs checkpoint path, the file to continue from" if self.resume else ""
            raise ValueError(
                f"Checkpoint(path={self.path!r}): path must be a file path (str or os.PathLike)"
                f"{'; ' + need if need else ''}; e.g. Checkpoint('run.json', resume={self.resume!r})."
            )
        object.__setattr__(self, "every", int_at_least("Checkpoint", "every", self.every, 1, "iterations"))
        if not isinstance(self.resume, bool):
            raise ValueError(f"Checkpoint(resume={self.resume!r}): resume must be True or False.")


_TYPES: dict[str, type] = {
    c.__name__: c for c in (Adam, AdamW, Optax, LBFGS, Loss, Shooting, Solve, Checkpoint)
}


def option_from_json(d: dict[str, Any]) -> Any:
    """The option object that `to_json` wrote.

    Args:
        d: ``{"type": name, field: value, ...}``.

    Returns:
        The option object.

    Raises:
        ValueError: an unknown type, or a field that held a callable or a diffrax object (only
            its name is stored: pass the object again instead of reading it from the file).

    >>> import symml as sm
    >>> option_from_json({"type": "LBFGS", "steps": 50})
    LBFGS(steps=50)
    """
    cls = _TYPES.get(d.get("type", "")) if isinstance(d, dict) else None
    if cls is None:
        raise ValueError(f"Not a stored training option: {d!r}; expected one of {sorted(_TYPES)}.")
    kwargs = {}
    for f in dataclasses.fields(cls):
        value = d.get(f.name, f.default)
        if isinstance(value, dict):
            value = option_from_json(value)
        elif isinstance(value, str) and value.startswith("<") and value.endswith(">"):
            raise ValueError(
                f"{cls.__name__}.{f.name} was {value}, which a JSON file can only name; build the option "
                "again with the object itself."
            )
        kwargs[f.name] = value
    return cls(**kwargs)
