"""Time-marching: a long span trained as consecutive windows, each starting where the last ended.

A PINN over many periods of an oscillation tends to settle on a wrong, smooth function that
satisfies the equation late in the span but not from the initial values on; causal weights
alone did not prevent it on the pendulum (θ(0) = 1: 0.03 % of the amplitude on [0, 3],
101-414 % on [0, 6] with every causal tolerance, step count and width tried). Time-marching
(Wight and Zhao, "Solving Allen-Cahn and Cahn-Hilliard equations using the adaptive physics
informed neural networks", 2020; Mattey and Ghosh, "A novel sequential method to train physics
informed neural networks", 2022) cuts the span into windows short enough to train, trains
them in order, and gives every window after the first the initial values of the state (and its
derivatives) that the previous window's network reaches at its end.

Window lengths (``windows="auto"``) follow the model's own time scale, like an adaptive step
size: a window spans `PERIODS` periods ``2 pi / rho`` of the linearised dynamics, ``rho`` the
spectral radius of the Jacobian of the vector field. The first window takes ``rho`` at the
initial values; after training, ``rho`` is taken along the window's solution, and a window
longer than `STRETCH` such periods, or one whose network does not solve the equation, is
trained again, shorter. The next window plans with the largest ``rho`` met so far.

Measured (``benchmarks/pinn.py``; 1000 Adam + 300 L-BFGS steps per window, 2 cores): the
pendulum with θ(0) = 1 on [0, 6] in 6 windows, 0.017 % of the amplitude in 47 s (one window:
414 %); Lotka-Volterra on [0, 20] in 13 windows, 0.49 % in 41 s (one window: 100 %; windows of
one period instead of half: 26 %, the hand-over errors add up); Van der Pol on [0, 15] in 14
windows, 0.013 % in 76 s.

>>> import math, jax.numpy as jnp, symml as sm
>>> pend = sm.zoo.pendulum(small_angle=True)  # omega = sqrt(9.81): period 2.006
>>> rhs, p = sm.compile(pend), jnp.asarray([9.81, 1.0])
>>> round(2 * math.pi / radius(rhs, p, jnp.zeros(1), jnp.asarray([[0.1, 0.0]])), 3)
2.006
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

__all__ = ["MAX_WINDOWS", "PERIODS", "STRETCH", "radius", "march", "window_path"]

#: The most windows a march trains (retrained windows included; each costs a training).
MAX_WINDOWS = 48
#: A window is planned to span this many linearised periods ...
PERIODS = 0.5
#: ... and may span at most this many along its own solution.
STRETCH = 0.75
#: A last window shorter than this fraction of the planned length is merged into the one before.
_SLIVER = 0.3


def radius(rhs: Any, p: jax.Array, ts: jax.Array, ys: jax.Array) -> float:
    """The largest spectral radius of ``d rhs / d y`` at the points ``(ts[i], ys[i])`` (0 if not finite)."""
    jac = np.asarray(jax.vmap(lambda t_, y: jax.jacfwd(lambda v: rhs(t_, v, p))(y))(ts, ys))
    if jac.size == 0 or not np.all(np.isfinite(jac)):
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(jac))))


def window_path(path: Any, k: int, attempt: int, several: bool) -> str:
    """Checkpoint file of try ``attempt`` at window ``k``: ``path`` for a single window, else
    ``stem.window{k}-{attempt}.ext`` (a retried window keeps its first try's file apart)."""
    path = os.fspath(path)
    if not several:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.window{k}-{attempt}{ext}"


def march(
    t_span: tuple[float, float],
    start: Mapping[Any, float],
    windows: int | None,
    train: Callable[[tuple[float, float], Mapping[Any, float], int, int], tuple],
    rate: Callable[[tuple | None, tuple[float, float] | None], float],
    end_state: Callable[[tuple, float], dict],
    solved: Callable[[tuple], bool],
) -> list[tuple]:
    """Train ``t_span`` window by window; returns the trained pieces in time order.

    Args:
        t_span: the whole span.
        start: the initial values at ``t_span[0]``.
        windows: a fixed count of equal windows, or None for the adaptive lengths above.
        train: ``(span, start, k, attempt) -> piece`` trains window ``k``.
        rate: ``(piece, span) -> rho`` along a trained piece's solution over ``span``, or, with
            ``piece=None`` and ``span=None``, at the initial values.
        end_state: ``(piece, t) -> {state: value}`` of a piece at time ``t``.
        solved: ``piece -> bool``: False for a window whose network does not solve the
            equation (it is trained again, half as long).
    """
    t0, t1 = float(t_span[0]), float(t_span[1])
    if windows is not None:
        cuts = np.linspace(t0, t1, windows + 1)
        pieces: list[tuple] = []
        for k in range(windows):
            pieces.append(train((float(cuts[k]), float(cuts[k + 1])), start, k, 0))
            start = end_state(pieces[-1], float(cuts[k + 1]))
        return pieces
    pieces, tried = [], 0
    rho = rate(None, None)
    t, attempt = t0, 0
    while t < t1:
        h = t1 - t if rho <= 0 else min(t1 - t, PERIODS * 2 * math.pi / rho)
        if t1 - (t + h) < _SLIVER * h:
            h = t1 - t
        span = (t, t + h)
        piece = train(span, start, len(pieces), attempt)
        tried += 1
        seen = max(rho, rate(piece, span))
        too_long = h * seen > STRETCH * 2 * math.pi
        if tried < MAX_WINDOWS and (too_long or not solved(piece)):
            # too long for the dynamics it met, or not trained: again, shorter (half as long)
            rho = seen if too_long else max(seen, 2 * PERIODS * 2 * math.pi / h)
            attempt += 1
            continue
        pieces.append(piece)
        t, attempt = t + h, 0
        if t < t1:
            start = end_state(piece, t)
            rho = seen  # the fastest dynamics met so far
            if tried >= MAX_WINDOWS:  # out of windows: the rest in one
                rho = 0.0
    return pieces
