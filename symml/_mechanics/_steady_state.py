"""`steady_state`: where a model's right-hand side vanishes, and whether it is stable there.

Newton's method (optimistix) on the compiled vector field from a guess; the Jacobian there
(``jax.jacfwd`` of the same compiled field, so neural terms work too) gives the eigenvalues and
the verdict: stable when every eigenvalue has a negative real part. optimistix differentiates
the root by the implicit function theorem, so ``jax.grad`` of the steady state with respect to
parameter values works.

>>> import sympy as sp, symml as sm
>>> x, = sm.states("x"); r, K = sm.parameters("r K")
>>> logistic = sm.Model([sp.Eq(x.diff(sm.t), r * x * (1 - x / K))], defaults={r: 1.0, K: 3.0})
>>> ss = sm.steady_state(logistic, guess={x: 2.0})
>>> round(float(ss[x]), 6), [round(float(e.real), 6) for e in ss.eigenvalues], bool(ss.stable)
(3.0, [-1.0], True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optimistix as optx
import sympy as sp

from .._compile import compile
from .._declare import bind_ics, bind_params
from .._declare._model import Model
from ..errors import ModelError

__all__ = ["steady_state", "SteadyState"]


@dataclasses.dataclass(frozen=True)
class SteadyState:
    """What `steady_state` found.

    Attributes:
        states: the model's states, in order.
        y: their values at the steady state (a JAX array).
        jacobian: ``d rhs / d states`` there.
        eigenvalues: the Jacobian's eigenvalues (complex).
        stable: every eigenvalue has a negative real part (asymptotically stable).
        residual: the largest absolute component of the right-hand side there.
        converged: whether Newton met its tolerance.
    """

    states: tuple[sp.Expr, ...]
    y: Any
    jacobian: Any
    eigenvalues: Any
    stable: Any
    residual: Any
    converged: Any
    model: Any = dataclasses.field(repr=False, default=None)

    def __getitem__(self, key: Any) -> Any:
        s = self.model.lookup(key)
        if s not in self.states:
            raise ModelError(f"{key!r} is a parameter, not a state; the states are {self.states}.")
        return self.y[self.states.index(s)]


def steady_state(
    model: Any,
    guess: Mapping[Any, Any] | None = None,
    *,
    params: Mapping[Any, Any] | None = None,
    t: float = 0.0,
    tol: float = 1e-10,
    max_steps: int = 100,
    networks: Mapping[str, Any] | None = None,
) -> SteadyState:
    """The steady state of ``model`` nearest (for Newton) to ``guess``, with its stability.

    Args:
        model: a `symml.Model`.
        guess: starting values by state or name; the model's initial values fill the rest.
        params: parameter values by symbol or name (defaults fill the rest); tracers work.
        t: the time at which a non-autonomous right-hand side is evaluated.
        tol: Newton's relative and absolute tolerance.
        max_steps: Newton's step limit (the result says whether it converged).
        networks: weights of neural terms, overriding those on the model.

    Returns:
        A `SteadyState` (``ss.y``, ``ss[x]``, ``ss.eigenvalues``, ``ss.stable``).

    Raises:
        MissingValueError: a state without a guess or initial value, or a parameter without a value.
        UnknownNameError: ``guess`` or ``params`` names something the model does not have.
        ModelError: ``model`` is not a `symml.Model`.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> th, = sm.states("theta"); g, l, c = sm.parameters("g l c")
        >>> damped = sm.Model([sp.Eq(th.diff(sm.t, 2), -g / l * sp.sin(th) - c * th.diff(sm.t))],
        ...                   defaults={g: 9.81, l: 1.0, c: 0.5})
        >>> down = sm.steady_state(damped, guess={th: 0.3, th.diff(sm.t): 0.0})
        >>> up = sm.steady_state(damped, guess={th: 3.0, th.diff(sm.t): 0.0})
        >>> round(abs(float(down[th])), 6), bool(down.stable), round(float(up[th]), 6), bool(up.stable)
        (0.0, True, 3.141593, False)
    """
    if not isinstance(model, Model):
        raise ModelError(f"steady_state needs an sm.Model, got {type(model).__name__}.")
    vf = compile(model, networks=networks)
    dtype = jnp.result_type(float)
    y0 = jnp.asarray(jnp.stack([jnp.asarray(v, dtype) for v in bind_ics(model, guess)]), dtype)
    pv = bind_params(model, params)
    p = jnp.stack([jnp.asarray(v, dtype) for v in pv]) if pv else jnp.zeros(0, dtype)
    t_ = jnp.asarray(t, dtype)

    def rhs(y, args):
        return vf(t_, y, args)

    sol = optx.root_find(
        rhs, optx.Newton(rtol=tol, atol=tol), y0, args=p, max_steps=int(max_steps), throw=False
    )
    y = sol.value
    # Stability is reported, not differentiated: eigenvalues of a non-symmetric matrix have no
    # reverse-mode rule, and a gradient through the root must not trip over them.
    jac = jax.jacfwd(rhs)(jax.lax.stop_gradient(y), jax.lax.stop_gradient(p))
    eig = jnp.linalg.eigvals(jac)
    return SteadyState(
        states=tuple(model.states),
        y=y,
        jacobian=jac,
        eigenvalues=eig,
        stable=jnp.all(eig.real < 0),
        residual=jnp.max(jnp.abs(rhs(jax.lax.stop_gradient(y), jax.lax.stop_gradient(p)))),
        converged=sol.result == optx.RESULTS.successful,
        model=model,
    )
