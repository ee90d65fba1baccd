"""Stiffness detected during an explicit solve: `StiffnessDetector`, behind ``solver="auto"``.

Judging stiffness from the Jacobian at ``t0`` alone misses problems that become stiff later:
Robertson's kinetics have eigenvalues ``(-0.04, 0, 0)`` at the start and ``-10^4`` once the
intermediate species has formed, so an explicit solver picked at ``t0`` crawls at its stability
limit until ``max_steps``. `StiffnessDetector` wraps Tsit5 and applies Hairer's test (Hairer &
Wanner, *Solving ODEs II*, IV.2; the test in DOPRI5): on every accepted step it estimates

    h·ρ ≈ h ‖f(t1, y1) - f(t1, y6)‖ / ‖y1 - y6‖

from the two stages Tsit5 evaluates at ``t1`` (its sixth stage ``y6`` and the solution ``y1``),
an estimate of the step size times the dominant eigenvalue that costs no extra evaluation of the
vector field (``h`` cancels: ``y1 - y6 = h Σ (b_j - a_6j) k_j``). When ``h·ρ`` exceeds
`STIFF_HRHO` (just inside Tsit5's stability interval ``[-3.51, 0]``) on `STIFF_STEPS` accepted
steps without `NONSTIFF_STEPS` consecutive steps below it in between, the step size is
stability-limited: the wrapper records the time and ends the solve (result code
``dt_min_reached``, which nothing else raises without a ``dtmin``; `symml.simulate` then
restarts with an implicit method). Accuracy-limited steps
(non-stiff problems) keep ``h·ρ`` well below the limit, so they are never switched.

>>> import diffrax, jax.numpy as jnp
>>> det = StiffnessDetector(diffrax.Tsit5())
>>> term = diffrax.ODETerm(lambda t, y, a: -1e4 * y)  # stiff: every step is stability-limited
>>> pid = diffrax.PIDController(rtol=1e-6, atol=1e-9)
>>> sol = diffrax.diffeqsolve(term, det, 0.0, 1.0, 1e-6, jnp.ones(1), throw=False,
...     saveat=diffrax.SaveAt(solver_state=True), stepsize_controller=pid)
>>> bool(jnp.isfinite(stiff_time(sol.solver_state)))
True
"""

from __future__ import annotations

from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["StiffnessDetector", "stiff_time", "STIFF_HRHO", "STIFF_STEPS", "NONSTIFF_STEPS"]

#: ``h·ρ`` above this is a stability-limited step (Tsit5 is stable on ``[-3.51, 0]``; DOPRI5 uses
#: 3.25 against its 3.31).
STIFF_HRHO = 3.25
#: Stability-limited accepted steps before the solve is declared stiff (DOPRI5's 15).
STIFF_STEPS = 15
#: Consecutive steps below the limit that reset the count (DOPRI5's 6).
NONSTIFF_STEPS = 6


def _tsit5_weights() -> np.ndarray:
    tab = diffrax.Tsit5.tableau
    a6 = np.zeros(len(tab.b_sol))
    a6[: len(tab.a_lower[4])] = tab.a_lower[4]  # the sixth stage, at c = 1 like the solution
    return np.asarray(tab.b_sol, dtype=float) - a6


_WEIGHTS = _tsit5_weights()


class StiffnessDetector(diffrax.AbstractAdaptiveSolver):
    """Tsit5 that ends its solve when the step size becomes stability-limited.

    Its solver state is ``(tsit5_state, n_stiff, n_nonstiff, t_stiff)``; read the detection time
    with `stiff_time` from ``diffeqsolve(..., saveat=SaveAt(..., solver_state=True))``.

    Attributes:
        solver: the wrapped `diffrax.Tsit5`.
    """

    solver: diffrax.Tsit5

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore[reportIncompatibleVariableOverride]
        return self.solver.interpolation_cls

    def order(self, terms):
        return self.solver.order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        inner = self.solver.init(terms, t0, t1, y0, args)
        zero = jnp.asarray(0, jnp.int32)
        return inner, zero, zero, jnp.asarray(jnp.inf, jnp.result_type(t0, float))

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        inner, n_stiff, n_nonstiff, t_stiff = solver_state
        y1, y_error, dense_info, inner, result = self.solver.step(terms, t0, t1, y0, args, inner, made_jump)
        k = dense_info["k"]
        k = jnp.reshape(k, (k.shape[0], -1))
        num = jnp.linalg.norm(k[-1] - k[-2])
        den = jnp.linalg.norm(jnp.asarray(_WEIGHTS, k.dtype) @ k)
        hrho = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)
        limited = hrho > STIFF_HRHO
        n_nonstiff = jnp.where(limited, 0, n_nonstiff + 1)
        n_stiff = jnp.where(limited, n_stiff + 1, jnp.where(n_nonstiff >= NONSTIFF_STEPS, 0, n_stiff))
        now_stiff = (n_stiff >= STIFF_STEPS) & ~jnp.isfinite(t_stiff)
        t_stiff = jnp.where(now_stiff, jnp.asarray(t1, t_stiff.dtype), t_stiff)
        # A failure code ends diffrax's loop after this (accepted) step (event_occurred would be
        # overwritten by the controller's result). The PID controller raises dt_min_reached
        # only with a dtmin, which symml never sets; callers tell stiffness apart by t_stiff.
        result = diffrax.RESULTS.where(now_stiff, diffrax.RESULTS.dt_min_reached, result)
        return y1, y_error, dense_info, (inner, n_stiff, n_nonstiff, t_stiff), result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def stiff_time(solver_state: Any) -> jax.Array:
    """When `StiffnessDetector` found the solve stiff (``inf``: never), from its final state.

    Args:
        solver_state: ``diffeqsolve(...).solver_state`` of a solve with `StiffnessDetector`.

    Returns:
        The detection time (a scalar array).
    """
    return solver_state[3]
