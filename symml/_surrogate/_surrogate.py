"""`symml.surrogate`: an MLP fitted to any function of a few inputs, sampled on a grid or a Latin
hypercube, with standardised inputs and outputs and an error measured on held-back points.

The function is a JAX-traceable callable of the inputs (a range through `symml.solver_fn`, a
simulated quantity) or a SymPy expression of the input symbols (a closed form from
`symml.solve_analytic`, compiled through the one SymPy -> JAX table). Samples whose value is not
finite (a throw that never lands within the span) are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile import build_program
from .._train import Adam
from ..errors import DataError
from ._adam import minimize_adam, mlp

__all__ = ["Surrogate", "surrogate", "SAMPLINGS", "as_function", "input_names"]

#: How inputs are sampled.
SAMPLINGS = ("grid", "lhs")
_ADAM = Adam(lr=3e-3, steps=3000)


def input_names(domain: Mapping[Any, tuple[float, float]]) -> tuple[Any, ...]:
    return tuple(domain)


def as_function(fn: Callable[..., Any] | sp.Expr, inputs: tuple[Any, ...]) -> Callable[..., Any]:
    """``fn`` as a JAX function of the inputs positionally (SymPy expressions compiled)."""
    if isinstance(fn, sp.Basic):
        syms = []
        for k in inputs:
            if not isinstance(k, sp.Symbol):
                raise DataError(f"domain key {k!r}: a SymPy quantity needs its input symbols as domain keys.")
            syms.append(k)
        extra = fn.free_symbols - set(syms)
        if extra:
            raise DataError(
                f"fn has symbols {sorted(map(str, extra))} that are not in domain {list(map(str, syms))}; "
                "substitute values for them (fn.subs({...})) or add them to the domain."
            )
        program = build_program((fn,), (), tuple(syms), "quantity")

        def compiled(*values):
            p = jnp.stack([jnp.asarray(v, dtype=jnp.result_type(float)) for v in values])
            return jnp.asarray(program.run(0.0, jnp.zeros(0), p, {})[0], dtype=p.dtype)

        return compiled
    if not callable(fn):
        raise DataError(
            f"fn must be a JAX-traceable function of the inputs or a SymPy expression, got {fn!r}."
        )
    return fn


def sample(
    domain: Mapping[Any, tuple[float, float]], n: int, sampling: str, rng: np.random.Generator
) -> np.ndarray:
    """``n`` input points (``grid``: about ``n`` on a regular grid; ``lhs``: a Latin hypercube)."""
    lo = np.asarray([float(v[0]) for v in domain.values()])
    hi = np.asarray([float(v[1]) for v in domain.values()])
    d = len(lo)
    if sampling == "grid":
        k = max(int(round(n ** (1.0 / d))), 2)
        axes = [np.linspace(a, b, k) for a, b in zip(lo, hi)]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], -1)
    u = (np.stack([rng.permutation(n) for _ in range(d)], -1) + rng.uniform(size=(n, d))) / n
    return lo + (hi - lo) * u


class Surrogate(eqx.Module):
    """An MLP standing in for a function of a few inputs; build with `symml.surrogate`.

    Call it on one point (``D(v, theta)``: a scalar, or a vector for several outputs; JAX
    traceable and differentiable), or use `predict` on many. ``error`` holds the RMS and max
    error on the held-back samples (in the output's units).

    Examples:
        >>> import sympy as sp, symml as sm
        >>> x, y = sp.symbols("x y")
        >>> S = sm.surrogate(x * y, {x: (0, 1), y: (0, 1)}, n=100, optimizer=sm.Adam(steps=500),
        ...                  verbose=False)
        >>> round(float(S(0.6, 0.5)), 1), S.error["rms"] < 0.05
        (0.3, True)
    """

    net: eqx.nn.MLP
    inputs: tuple = eqx.field(static=True)
    x_mean: tuple[float, ...] = eqx.field(static=True)
    x_std: tuple[float, ...] = eqx.field(static=True)
    y_mean: tuple[float, ...] = eqx.field(static=True)
    y_std: tuple[float, ...] = eqx.field(static=True)
    domain: tuple[tuple[float, float], ...] = eqx.field(static=True)
    errors: tuple[tuple[str, float], ...] = eqx.field(static=True)

    @property
    def error(self) -> dict[str, float]:
        """``rms``, ``max`` (output units), ``relative_rms`` (per output std) on ``held_back`` points."""
        return dict(self.errors)

    def __call__(self, *xs: Any) -> jax.Array:
        h = (jnp.stack([jnp.asarray(x, dtype=float) for x in xs]) - jnp.asarray(self.x_mean)) / jnp.asarray(
            self.x_std
        )
        out = self.net(h) * jnp.asarray(self.y_std) + jnp.asarray(self.y_mean)
        return out[0] if len(self.y_mean) == 1 else out

    @property
    def n_out(self) -> int:
        return len(self.y_mean)

    def predict(self, x: Any) -> np.ndarray:
        """Values at many points: ``x`` of shape ``(n, inputs)`` or ``{input: array}``."""
        if isinstance(x, Mapping):
            cols = [np.asarray(x[k], dtype=float) for k in self.inputs]
            x = np.stack(np.broadcast_arrays(*cols), -1)
        x = np.atleast_2d(np.asarray(x, dtype=float))
        return np.asarray(jax.jit(jax.vmap(lambda r: self(*r)))(jnp.asarray(x)))


def _evaluate(f: Callable[..., Any], X: np.ndarray, chunk: int) -> np.ndarray:
    one = jax.jit(jax.vmap(lambda r: jnp.atleast_1d(jnp.asarray(f(*r), dtype=float))))
    out = []
    for i in range(0, X.shape[0], chunk):
        part = X[i : i + chunk]
        pad = chunk - part.shape[0]
        padded = np.concatenate([part, np.repeat(part[-1:], pad, 0)]) if pad else part
        out.append(np.asarray(one(jnp.asarray(padded)))[: part.shape[0]])
    return np.concatenate(out)


def surrogate(
    fn: Callable[..., Any] | sp.Expr,
    domain: Mapping[Any, tuple[float, float]],
    *,
    n: int = 2500,
    sampling: str = "grid",
    holdout: float = 0.1,
    width: int = 64,
    depth: int = 3,
    optimizer: Adam = _ADAM,
    batch_size: int = 512,
    chunk: int = 1024,
    seed: int = 0,
    verbose: bool = True,
) -> Surrogate:
    """Fit an MLP surrogate of ``fn`` over ``domain``.

    Args:
        fn: a JAX-traceable function of the inputs (positionally, in ``domain`` order) returning a
            scalar or a vector, or a SymPy expression of the domain's symbols.
        domain: ``{input: (lo, hi)}``: symbols or names; their order is the argument order.
        n: samples (for ``"grid"``, the nearest ``k**d``).
        sampling: ``"grid"`` or ``"lhs"`` (Latin hypercube).
        holdout: fraction of the samples held back to measure the error (``error``).
        width: hidden width of the MLP.
        depth: hidden layers of the MLP.
        optimizer: the `symml.Adam` run (minibatches of ``batch_size``).
        batch_size: samples per Adam step.
        chunk: samples of ``fn`` evaluated per vectorised call.
        seed: seeds sampling, the held-back split, the weights and the minibatches.
        verbose: show a progress bar.

    Returns:
        A `Surrogate` (an equinox Module): ``S(*inputs)``, ``S.predict(points)``, ``S.error``.

    Raises:
        DataError: an empty domain, a bad range, too few finite samples, or a SymPy ``fn`` with
            symbols outside the domain.
        ValueError: an option out of range.

    Example:
        >>> import sympy as sp, symml as sm
        >>> v = sp.Symbol("v", positive=True)
        >>> S = sm.surrogate(v**2 / 9.81, {v: (1, 10)}, n=64, optimizer=sm.Adam(steps=500), verbose=False)
        >>> abs(float(S(5.0)) - 25 / 9.81) < 0.2
        True
    """
    if not isinstance(domain, Mapping) or not domain:
        raise DataError(f"domain must be a non-empty dict {{input: (lo, hi)}}, got {domain!r}.")
    for k, v in domain.items():
        ok = isinstance(v, (tuple, list)) and len(v) == 2 and np.all(np.isfinite(np.asarray(v, dtype=float)))
        if not ok or float(v[1]) <= float(v[0]):
            raise DataError(f"domain[{k}] must be (lo, hi) with lo < hi, got {v!r}.")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}.")
    if not (isinstance(n, int) and n >= 4):
        raise ValueError(f"n must be an int >= 4 (samples), got {n!r}.")
    if not (0 < holdout < 0.5):
        raise ValueError(f"holdout must be a fraction in (0, 0.5), got {holdout!r}.")
    inputs = input_names(domain)
    f = as_function(fn, inputs)
    rng = np.random.default_rng(seed)
    X = sample(domain, n, sampling, rng)
    Y = _evaluate(f, X, chunk)
    good = np.all(np.isfinite(Y), axis=1)
    X, Y = X[good], Y[good]
    if X.shape[0] < 8:
        raise DataError(f"fn is finite at only {X.shape[0]} of {good.size} samples; check fn and domain.")
    order = rng.permutation(X.shape[0])
    n_test = max(int(round(holdout * X.shape[0])), 1)
    test, train = order[:n_test], order[n_test:]
    x_mean, x_std = X[train].mean(0), X[train].std(0) + 1e-12
    y_mean, y_std = Y[train].mean(0), Y[train].std(0) + 1e-12
    Xs = jnp.asarray((X[train] - x_mean) / x_std)
    Ys = jnp.asarray((Y[train] - y_mean) / y_std)
    bs = min(batch_size, Xs.shape[0])
    net = mlp(X.shape[1], Y.shape[1], width, depth, jax.random.PRNGKey(seed))

    def loss(m, key):
        idx = jax.random.randint(key, (bs,), 0, Xs.shape[0])
        return jnp.mean((jax.vmap(m)(Xs[idx]) - Ys[idx]) ** 2)

    net, losses = minimize_adam(loss, net, optimizer, seed=seed, verbose=verbose, desc="surrogate")
    box = tuple((float(a), float(b)) for a, b in domain.values())
    tup = lambda a: tuple(float(x) for x in a)  # noqa: E731
    S = Surrogate(net, inputs, tup(x_mean), tup(x_std), tup(y_mean), tup(y_std), box, ())
    err = S.predict(X[test]).reshape(-1, Y.shape[1]) - Y[test]
    error = {
        "rms": float(np.sqrt(np.mean(err**2))),
        "max": float(np.max(np.abs(err))),
        "held_back": int(n_test),
    }
    error["relative_rms"] = error["rms"] / float(np.mean(y_std))
    return Surrogate(net, inputs, S.x_mean, S.x_std, S.y_mean, S.y_std, box, tuple(error.items()))
