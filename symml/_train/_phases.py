"""The optimiser phases of `symml.train` as option objects: `Adam`, `AdamW`, `Optax`, `LBFGS`.

Training runs a first phase (a first-order optimiser, or L-BFGS from the start) and then an
L-BFGS polish. Each object holds what its phase needs: iterations, learning rate and schedule,
mini-batch size, and how many consecutive NaN/inf steps it tolerates. How they are applied is in
`symml._train._optimizers`.

>>> import symml as sm
>>> sm.Adam(lr=3e-3, steps=500).to_json()["lr"]
0.003
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import optax

from ._option_base import Option, int_at_least, is_int, is_number, non_negative

__all__ = ["Adam", "AdamW", "Optax", "LBFGS", "FIRST_PHASES", "SCHEDULES"]

#: Learning-rate schedules by name (see `symml._train._optimizers.learning_rate`).
SCHEDULES = ("warmup_cosine", "cosine", "constant", "exponential")


def _steps(owner: str, value: Any) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(
            f"{owner}(steps={value!r}): the steps and polish must be >= 0 whole numbers of iterations "
            f"(0 skips the phase), got {value!r}; e.g. {owner}(steps=100)."
        )
    return int(value)


def _batch_size(owner: str, value: Any) -> int | None:
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(
            f"{owner}(batch_size={value!r}): batch_size must be a positive number of trajectories (or "
            "shooting segments) per step, or None for all of them."
        )
    return int(value)


def _lr(owner: str, lr: Any, schedule: Any) -> float | Callable:
    if callable(lr):
        return lr
    if not (is_number(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(
            f"{owner}(lr={lr!r}): lr must be a positive number or an optax schedule (a callable of the "
            f"step count), got {lr!r}; e.g. {owner}(lr=1e-2)."
        )
    if schedule not in SCHEDULES:
        raise ValueError(
            f"{owner}(schedule={schedule!r}): Unknown schedule {schedule!r}; choose one of {SCHEDULES} or "
            f"pass an optax schedule as lr."
        )
    return float(lr)


def _check_first_order(option: Any, lr: bool) -> None:
    """Check and normalise the fields that `Adam`, `AdamW` and `Optax` share."""
    name = type(option).__name__
    if lr:
        object.__setattr__(option, "lr", _lr(name, option.lr, option.schedule))
    object.__setattr__(option, "steps", _steps(name, option.steps))
    object.__setattr__(option, "batch_size", _batch_size(name, option.batch_size))
    rejected = int_at_least(name, "max_rejected", option.max_rejected, 1, "consecutive NaN/inf steps")
    object.__setattr__(option, "max_rejected", rejected)


@dataclasses.dataclass(frozen=True)
class Adam(Option):
    """Adam as the first training phase, with a named learning-rate schedule.

    Args:
        lr: peak learning rate, or an optax schedule (a callable of the step count; then
            ``schedule`` is not used).
        steps: iterations (default 100: a short warm-up before the L-BFGS polish).
        schedule: ``"warmup_cosine"`` (default: a linear rise from ``lr/10`` over the first 5 % of
            the steps, then a cosine down to ``lr/100``), ``"cosine"``, ``"exponential"``
            (down to ``lr/100``) or ``"constant"``.
        batch_size: trajectories (or shooting segments) per step, drawn at random from the seed;
            default all.
        max_rejected: stop with `symml.TrainingError` after this many consecutive steps whose
            loss or gradient was NaN/inf (each is undone and the step size halved).

    Raises:
        ValueError: a field out of range (the message names it and shows what to pass).

    >>> import symml as sm
    >>> sm.Adam(lr=3e-3, steps=500)
    Adam(lr=0.003, steps=500, schedule='warmup_cosine', batch_size=None, max_rejected=10)
    >>> sm.Adam(lr=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: Adam(lr=-1.0): lr must be a positive number or an optax schedule (a callable of ...
    """

    lr: float | Callable[[Any], Any] = 1e-2
    steps: int = 100
    schedule: str = "warmup_cosine"
    batch_size: int | None = None
    max_rejected: int = 10

    label: ClassVar[str] = "Adam"

    def __post_init__(self) -> None:
        _check_first_order(self, lr=True)


@dataclasses.dataclass(frozen=True)
class AdamW(Option):
    """AdamW (Adam with decoupled weight decay on the network weights) as the first phase.

    Args:
        lr: as in `Adam`.
        steps: as in `Adam`.
        schedule: as in `Adam`.
        batch_size: as in `Adam`.
        max_rejected: as in `Adam`.
        weight_decay: decay rate of the network weight matrices and biases (parameters, initial
            values and shooting nodes are not decayed).

    Raises:
        ValueError: a field out of range.

    >>> import symml as sm
    >>> sm.AdamW(steps=200, weight_decay=1e-3).weight_decay
    0.001
    """

    lr: float | Callable[[Any], Any] = 1e-2
    steps: int = 100
    schedule: str = "warmup_cosine"
    weight_decay: float = 1e-4
    batch_size: int | None = None
    max_rejected: int = 10

    label: ClassVar[str] = "AdamW"

    def __post_init__(self) -> None:
        _check_first_order(self, lr=True)
        decay = non_negative("AdamW", "weight_decay", self.weight_decay, "the decay rate per step")
        object.__setattr__(self, "weight_decay", decay)


@dataclasses.dataclass(frozen=True)
class Optax(Option):
    """Any optax transformation as the first phase (it carries its own learning rate).

    An optax transformation passed directly as ``optimizer=`` means ``Optax(transformation)``.

    Args:
        transform: an ``optax.GradientTransformation``, e.g. ``optax.sgd(1e-3, momentum=0.9)``.
        steps: as in `Adam`.
        batch_size: as in `Adam`.
        max_rejected: as in `Adam`.

    Raises:
        ValueError: ``transform`` is not an optax transformation, or a field is out of range.

    >>> import optax, symml as sm
    >>> sm.Optax(optax.sgd(1e-3), steps=50).steps
    50
    """

    transform: optax.GradientTransformation
    steps: int = 100
    batch_size: int | None = None
    max_rejected: int = 10

    label: ClassVar[str] = "optax"

    def __post_init__(self) -> None:
        if not isinstance(self.transform, optax.GradientTransformation):
            raise ValueError(
                f"Optax(transform={self.transform!r}): transform must be an optax.GradientTransformation "
                "such as optax.sgd(1e-3); for Adam use sm.Adam(lr=..., steps=...)."
            )
        _check_first_order(self, lr=False)


@dataclasses.dataclass(frozen=True)
class LBFGS(Option):
    """L-BFGS: the polish after the first phase (``polish=``), or the first phase itself.

    Each iteration evaluates the loss and gradient once, over all the data; the phase stops
    early once it converges. As the first phase (``optimizer=sm.LBFGS(...)``) it runs from the
    start and there is no separate polish.

    Args:
        steps: iterations (default 700); ``LBFGS(steps=0)`` (or ``polish=None``) skips the phase.

    Raises:
        ValueError: ``steps`` is not an int >= 0.

    >>> import symml as sm
    >>> sm.LBFGS(steps=300)
    LBFGS(steps=300)
    """

    steps: int = 700

    label: ClassVar[str] = "L-BFGS"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _steps("LBFGS", self.steps))


#: What the first phase can be.
FIRST_PHASES = (Adam, AdamW, Optax, LBFGS)
