"""`symml.invert`: an encoder ``P(d) -> inputs`` trained through a frozen `Surrogate` so that
``S(P(d)) = d`` over a range of targets (the inverse-design network of the classic lecture).

An inverse is rarely a function: a whole curve of throws reaches 150 m. The encoder picks one
branch, and which one is the user's choice: ``bounds`` restricts the inputs it may return (a
shallow or a steep throw), ``fixed`` holds inputs at given values (the angle at a given speed).
Its outputs pass through a sigmoid onto the allowed box, so it never leaves the region the
surrogate was trained on. Against it stand the direct answers (`symml.solve_for` through the
simulation or a closed form), which are exact but cost a solve per target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._train import Adam
from ..errors import DataError
from ._adam import minimize_adam, mlp
from ._surrogate import Surrogate

__all__ = ["Encoder", "invert"]

_ADAM = Adam(lr=3e-3, steps=2000)


class Encoder(eqx.Module):
    """``P(d)``: the inputs of a `Surrogate` that produce the output ``d``; build with `symml.invert`.

    ``P(d)`` returns every input (fixed ones included) in the surrogate's order; `predict`
    returns them by input for many targets. ``error`` holds the RMS and max of
    ``S(P(d)) - d`` over test targets in the trained range.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> x, y = sp.symbols("x y")
        >>> S = sm.surrogate(x + y, {x: (0, 1), y: (0, 1)}, n=100, optimizer=sm.Adam(steps=400),
        ...                  verbose=False)
        >>> P = sm.invert(S, (0.5, 1.5), fixed={y: 0.5}, optimizer=sm.Adam(steps=400), verbose=False)
        >>> [round(float(v), 1) for v in P(1.0)]
        [0.5, 0.5]
    """

    net: eqx.nn.MLP
    surrogate: Surrogate
    free: tuple[int, ...] = eqx.field(static=True)
    lo: tuple[float, ...] = eqx.field(static=True)
    hi: tuple[float, ...] = eqx.field(static=True)
    values: tuple[float, ...] = eqx.field(static=True)  # every input; fixed ones used as they are
    d_mean: tuple[float, ...] = eqx.field(static=True)
    d_std: tuple[float, ...] = eqx.field(static=True)
    errors: tuple[tuple[str, float], ...] = eqx.field(static=True)

    @property
    def error(self) -> dict[str, float]:
        """``rms`` and ``max`` of ``S(P(d)) - d`` on test targets (output units)."""
        return dict(self.errors)

    @property
    def inputs(self) -> tuple:
        return self.surrogate.inputs

    def __call__(self, d: Any) -> jax.Array:
        h = (jnp.atleast_1d(jnp.asarray(d, dtype=float)) - jnp.asarray(self.d_mean)) / jnp.asarray(self.d_std)
        raw = jax.nn.sigmoid(self.net(h))
        lo, hi = jnp.asarray(self.lo), jnp.asarray(self.hi)
        return jnp.asarray(self.values).at[jnp.asarray(self.free)].set(lo + (hi - lo) * raw)

    def predict(self, d: Any) -> dict[Any, np.ndarray]:
        """The inputs for each target in ``d`` (shape ``(n,)`` or ``(n, outputs)``), by input."""
        d = np.asarray(d, dtype=float)
        d = d.reshape(-1, 1) if self.surrogate.n_out == 1 else np.atleast_2d(d)
        out = np.asarray(jax.jit(jax.vmap(self))(jnp.asarray(d)))
        return {k: out[:, i] for i, k in enumerate(self.inputs)}


def _index(S: Surrogate, key: Any, what: str) -> int:
    for i, k in enumerate(S.inputs):
        if key is k or key == k or str(key) == str(k):
            return i
    raise DataError(
        f"{what}: {key!r} is not an input of the surrogate (inputs: {[str(k) for k in S.inputs]})."
    )


def invert(
    surrogate: Surrogate,
    target: tuple[float, float] | Any,
    *,
    fixed: Mapping[Any, float] | None = None,
    bounds: Mapping[Any, tuple[float, float]] | None = None,
    width: int = 64,
    depth: int = 2,
    optimizer: Adam = _ADAM,
    batch_size: int = 256,
    seed: int = 0,
    verbose: bool = True,
) -> Encoder:
    """Train an encoder ``P`` through the frozen ``surrogate`` so that ``surrogate(P(d)) = d``.

    Args:
        surrogate: a `Surrogate` (from `symml.surrogate`).
        target: the targets to serve: ``(lo, hi)`` for a scalar output (sampled uniformly), or
            an array of target values, shape ``(n,)`` or ``(n, outputs)`` (sampled from).
        fixed: inputs held at given values ``{input: value}``.
        bounds: ``{input: (lo, hi)}``: where each free input may lie (default: the
            surrogate's domain); this picks the branch of a non-unique inverse.
        width: hidden width of the encoder.
        depth: hidden layers of the encoder.
        optimizer: the `symml.Adam` run.
        batch_size: targets per step.
        seed: seeds the weights and the targets drawn.
        verbose: show a progress bar.

    Returns:
        An `Encoder` (an equinox Module): ``P(d)`` (every input), ``P.predict(ds)``, ``P.error``.

    Raises:
        DataError: not a surrogate, unknown inputs in ``fixed``/``bounds``, bounds outside the
            domain, or no free input left.

    Example:
        >>> import sympy as sp, symml as sm
        >>> v = sp.Symbol("v", positive=True)
        >>> S = sm.surrogate(2 * v, {v: (0, 1)}, n=50, optimizer=sm.Adam(steps=300), verbose=False)
        >>> P = sm.invert(S, (0.2, 1.8), optimizer=sm.Adam(steps=300), verbose=False)
        >>> round(float(P(1.0)[0]), 1)
        0.5
    """
    if not isinstance(surrogate, Surrogate):
        raise DataError(f"surrogate must be an sm.surrogate(...) result, got {type(surrogate).__name__}.")
    S = surrogate
    values = [0.5 * (a + b) for a, b in S.domain]
    for k, v in (fixed or {}).items():
        values[_index(S, k, "fixed")] = float(v)
    fixed_idx = {_index(S, k, "fixed") for k in (fixed or {})}
    free = tuple(i for i in range(len(S.inputs)) if i not in fixed_idx)
    if not free:
        raise DataError("fixed holds every input of the surrogate; leave at least one free to solve for.")
    box = {i: S.domain[i] for i in free}
    for k, (a, b) in (bounds or {}).items():
        i = _index(S, k, "bounds")
        lo_d, hi_d = S.domain[i]
        if not (lo_d <= float(a) < float(b) <= hi_d):
            raise DataError(
                f"bounds[{k}] = ({a}, {b}) must lie inside the surrogate's domain ({lo_d}, {hi_d}) "
                "with lo < hi."
            )
        box[i] = (float(a), float(b))
    if isinstance(target, tuple) and len(target) == 2 and S.n_out == 1:
        lo_t, hi_t = float(target[0]), float(target[1])
        if not hi_t > lo_t:
            raise DataError(f"target (lo, hi) needs lo < hi, got {target!r}.")
        draw = lambda key, n: jax.random.uniform(key, (n, 1), minval=lo_t, maxval=hi_t)  # noqa: E731
        test = np.linspace(lo_t, hi_t, 101).reshape(-1, 1)
    else:
        pool = np.asarray(target, dtype=float).reshape(-1, S.n_out)
        pj = jnp.asarray(pool)
        draw = lambda key, n: pj[jax.random.randint(key, (n,), 0, pool.shape[0])]  # noqa: E731
        test = pool
    d_mean = tuple(float(x) for x in np.mean(test, 0))
    d_std = tuple(float(x) + 1e-12 for x in np.std(test, 0))
    ys = jnp.asarray(S.y_std)[None, :]
    net = mlp(S.n_out, len(free), width, depth, jax.random.PRNGKey(seed + 1))
    tup = lambda xs: tuple(float(x) for x in xs)  # noqa: E731
    make = lambda n, err: Encoder(  # noqa: E731
        n,
        S,
        free,
        tup(box[i][0] for i in free),
        tup(box[i][1] for i in free),
        tup(values),
        d_mean,
        d_std,
        err,
    )

    def loss(n, key):
        P = make(n, ())
        d = draw(key, batch_size)
        pred = jax.vmap(lambda dd: jnp.atleast_1d(S(*P(dd))))(d)
        return jnp.mean(((pred - d) / ys) ** 2)

    net, _ = minimize_adam(loss, net, optimizer, seed=seed, verbose=verbose, desc="invert")
    P = make(net, ())
    got = np.asarray(jax.jit(jax.vmap(lambda dd: jnp.atleast_1d(S(*P(dd)))))(jnp.asarray(test)))
    err = got - test
    return make(net, (("rms", float(np.sqrt(np.mean(err**2)))), ("max", float(np.max(np.abs(err))))))
