"""Solver choice for ``solver="auto"``: the stiffness index at the initial point.

>>> import symml as sm
>>> choose_solver(sm.zoo.van_der_pol(mu=1000.0), [2.0, 0.0], [1000.0], 0.0, 3000.0)
'kvaerno5'
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._compile._cache import artefact
from .._compile._codegen import compile, compile_exprs

__all__ = ["STIFFNESS_THRESHOLD", "stiffness_index", "choose_solver"]

#: ``solver="auto"`` switches to an implicit solver above this stiffness index
#: ``max(-Re λ) × (t1 - t0)`` (λ: eigenvalues of the Jacobian at the initial point).
STIFFNESS_THRESHOLD = 1000.0


def stiffness_index(model: Any, y0: Any, p: Any, t0: float, t1: float) -> float:
    """``max(0, max(-Re λ)) × |t1 - t0|`` with λ the eigenvalues of the Jacobian at (t0, y0).

    This is the number of time constants of the fastest decaying mode inside the span: an
    explicit solver needs about that many steps for stability alone, whatever the accuracy.

    Args:
        model: a `symml.Model`.
        y0: initial values in ``model.states`` order (the first member of an ensemble is used).
        p: parameter values in ``model.params`` order.
        t0: the time span.
        t1: the time span.

    Returns:
        The index (0 where the Jacobian is not finite).

    Raises:
        ValueError: ``y0`` or ``p`` with the wrong number of values (they must fit
            ``model.states`` / ``model.params``), or values that are not numbers.
        UnsupportedFunctionError: the Jacobian holds a function without a JAX translation.

    Examples:
        >>> import symml as sm
        >>> ho = sm.zoo.harmonic_oscillator()  # params (c, k, m) = (0.4, 4, 1): Re λ = -0.2
        >>> round(sm.stiffness_index(ho, [1.0, 0.0], [0.4, 4.0, 1.0], 0.0, 10.0), 4)
        2.0
    """
    y0 = np.asarray(y0, dtype=float).reshape(-1, len(model.states))[0]
    n_p = len(model.params)
    # A model without parameters (Robertson's kinetics) has nothing to reshape into rows.
    p = np.asarray(p, dtype=float).reshape(-1, n_p)[0] if n_p else np.zeros(0)
    if model.neural:
        vf = compile(model)
        jac = np.asarray(jax.jacfwd(lambda y: vf(t0, y, jnp.asarray(p)))(jnp.asarray(y0)))
    else:
        # The symbolic Jacobian, compiled once per model: cheaper to evaluate than jacfwd.
        jf = artefact(
            model,
            "stiffness",
            "jacobian",
            lambda: compile_exprs(model, list(model.jacobian()), title="jacobian"),
        )
        n = len(model.states)
        jac = np.asarray(jf(t0, jnp.asarray(y0), jnp.asarray(p))).reshape(n, n)
    if not np.all(np.isfinite(jac)):
        return 0.0
    lam = np.linalg.eigvals(jac)
    return float(max(0.0, float(np.max(-lam.real))) * abs(t1 - t0))


def choose_solver(model: Any, y0: Any, p: Any, t0: float, t1: float) -> str:
    """The ``solver="auto"`` rule: ``"kvaerno5"`` if the stiffness index exceeds
    `STIFFNESS_THRESHOLD`, else ``"tsit5"``.

    Args:
        model: as in `stiffness_index`.
        y0: as in `stiffness_index`.
        p: as in `stiffness_index`.
        t0: as in `stiffness_index`.
        t1: as in `stiffness_index`.

    Returns:
        A name in `symml._solve.SOLVERS`.

    Raises:
        ValueError: as in `stiffness_index`.
        UnsupportedFunctionError: as in `stiffness_index`.

    Examples:
        >>> import symml as sm
        >>> ho = sm.zoo.harmonic_oscillator()
        >>> sm.choose_solver(ho, [1.0, 0.0], [0.4, 4.0, 1.0], 0.0, 10.0)
        'tsit5'
    """
    return "kvaerno5" if stiffness_index(model, y0, p, t0, t1) > STIFFNESS_THRESHOLD else "tsit5"
