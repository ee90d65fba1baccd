"""Synthetic image data: a simulated trajectory rendered as frames, with exact time derivatives.

A frame is ``x(t) = R(t, y(t))``: a renderer ``R`` applied to the model's state ``y``. Its time
derivatives follow by the chain rule, ``x' = J_R (1, f)`` and ``x'' = d/dt [J_R (1, f)]`` with ``f``
the model's vector field, which `jax.jvp` evaluates exactly (two nested forward passes). So the
derivatives are those of the clean images, not finite differences of noisy ones: a SINDy
autoencoder needs ``x'`` and ``x''`` and the tutorial's dataset gives them exactly too.

>>> import numpy as np, symml as sm
>>> pend = sm.zoo.pendulum()
>>> theta, omega = pend.states
>>> f = sm.frames(pend, {theta: 1.0, omega: 0.0}, np.linspace(0, 1, 11), render=sm.Blob.pendulum(pend, n=8))
>>> f.x.shape, f.dx.shape, f.ddx.shape
((1, 11, 8, 8), (1, 11, 8, 8), (1, 11, 8, 8))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile import compile as compile_model
from .._compile import compile_exprs
from .._declare import bind_params
from .._solve import simulate
from ..errors import DataError


@dataclasses.dataclass(frozen=True)
class Blob:
    """A Gaussian blob at position ``(x, y)`` on an ``n`` x ``n`` grid over ``[-extent, extent]²``.

    ``x`` and ``y`` are SymPy expressions of the model's states (and ``t``), or numbers: the
    bob of a pendulum is ``Blob(x=sp.sin(theta), y=-sp.cos(theta))`` (`Blob.pendulum`). The pixel
    ``(i, j)`` is ``exp(-|p_ij - (x, y)|² / (2 width²))``, so the image is smooth in the state and
    its time derivatives exist.

    Example:
        >>> import symml as sm
        >>> pend = sm.zoo.pendulum()
        >>> blob = sm.Blob.pendulum(pend, n=12)
        >>> blob.x, blob.y, blob.n
        (sin(theta(t)), -cos(theta(t)), 12)
    """

    x: Any = 0
    y: Any = 0
    n: int = 16
    width: float = 0.25
    extent: float = 1.5

    def __post_init__(self):
        if not isinstance(self.n, (int, np.integer)) or isinstance(self.n, bool) or self.n < 2:
            raise DataError(f"Blob n (pixels per side) must be an integer >= 2, got {self.n!r}.")
        if not float(self.width) > 0 or not float(self.extent) > 0:
            raise DataError(
                f"Blob width and extent must be > 0, got width={self.width!r}, extent={self.extent!r}."
            )
        for name in ("x", "y"):
            value = getattr(self, name)
            if not isinstance(value, (sp.Basic, int, float, np.floating, np.integer)):
                raise DataError(
                    f"Blob {name} must be a SymPy expression of the model's states or a number, "
                    f"got {type(value).__name__}: {value!r}."
                )
            object.__setattr__(self, name, sp.sympify(value) if not isinstance(value, sp.Basic) else value)

    @classmethod
    def pendulum(cls, model: Any, *, n: int = 16, width: float = 0.25, length: float = 1.0) -> Blob:
        """The bob of a pendulum whose first state is the angle from the downward vertical.

        Args:
            model: a `symml.Model` (e.g. ``sm.zoo.pendulum()``).
            n: pixels per side.
            width: the blob's standard deviation (in the units of the grid, which spans ±1.5).
            length: the drawn length of the rod.

        Returns:
            ``Blob(x=length*sin(theta), y=-length*cos(theta))``.

        Raises:
            DataError: bad ``n`` or ``width``.
        """
        theta = model.states[0]
        drawn = sp.nsimplify(length)  # 1, not 1.0: keeps the position readable
        return cls(x=drawn * sp.sin(theta), y=-drawn * sp.cos(theta), n=n, width=width)

    def __call__(self, position: jax.Array) -> jax.Array:
        """The ``n`` x ``n`` image of a blob at ``position = (x, y)``."""
        grid = jnp.linspace(-self.extent, self.extent, self.n)
        gx, gy = grid[None, :], grid[::-1, None]  # row 0 is the top of the image
        r2 = (gx - position[0]) ** 2 + (gy - position[1]) ** 2
        return jnp.exp(-r2 / (2 * self.width**2))


@dataclasses.dataclass(frozen=True, eq=False)
class Frames:
    """Rendered trajectories: images ``x`` and their time derivatives, shaped ``(trajectories, T, n, n)``.

    Attributes:
        x: the frames (noise included when asked for).
        dx: their first time derivatives (exact, chain rule through the renderer).
        ddx: their second time derivatives.
        t: the sample times ``(T,)``.
        states: the simulated states ``(trajectories, T, len(model.states))``, for comparison.
        model: the model that was simulated.

    Example:
        >>> import numpy as np, symml as sm
        >>> pend = sm.zoo.pendulum()
        >>> th, om = pend.states
        >>> ics = [{th: 0.5, om: 0.0}, {th: 1.0, om: 0.0}]
        >>> f = sm.frames(pend, ics, np.linspace(0, 1, 5), render=sm.Blob.pendulum(pend, n=6))
        >>> f
        Frames(2 trajectories x 5 times, images 6x6)
    """

    x: np.ndarray
    dx: np.ndarray
    ddx: np.ndarray
    t: np.ndarray
    states: np.ndarray
    model: Any = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one frame."""
        return tuple(self.x.shape[2:])

    def __len__(self) -> int:
        return int(self.x.shape[0] * self.x.shape[1])

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.image_shape)
        return f"Frames({self.x.shape[0]} trajectories x {self.x.shape[1]} times, images {shape})"


def frames(
    model: Any,
    ics: Mapping[Any, Any] | Sequence[Mapping[Any, Any]],
    ts: Any,
    render: Blob | Callable[[jax.Array], jax.Array] | None = None,
    *,
    params: Mapping[Any, Any] | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Frames:
    """Simulate ``model`` and render each state as an image, with the frames' time derivatives.

    Args:
        model: a `symml.Model`.
        ics: initial values by state (``{theta: 1.0, theta.diff(t): 0}``), or a list of them for
            several trajectories.
        ts: the sample times, increasing (at least 2).
        render: a `Blob` (its position is SymPy in the model's states), or a function of the
            state vector (in ``model.states`` order) returning an image, written in JAX so that
            it can be differentiated. Default: a blob at ``(first state, 0)``.
        params: parameter values by symbol or name (the model's defaults fill the rest).
        noise: standard deviation of Gaussian noise added to the frames (the derivatives stay
            exact: they are what the chain rule gives for the clean images).
        seed: seed of the noise.

    Returns:
        `Frames` with ``x``, ``dx``, ``ddx`` shaped ``(trajectories, T, *image)``.

    Raises:
        DataError: fewer than 2 times, times not increasing, a negative ``noise``, or a
            renderer that does not return an array.

    Example:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> f = sm.frames(ho, {x: 1.0, v: 0.0}, np.linspace(0, 3, 31), render=sm.Blob(x=x, n=8), noise=0.01)
        >>> f.t.shape, f.states.shape, round(float(f.states[0, 0, 0]), 3)
        ((31,), (1, 31, 2), 1.0)
    """
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size < 2:
        raise DataError(f"ts must be a 1-d array of at least 2 times, got shape {ts.shape}.")
    if not np.all(np.diff(ts) > 0):
        raise DataError("ts must be strictly increasing; sort the times (or drop duplicates).")
    if not float(noise) >= 0:
        raise DataError(f"noise must be >= 0 (a standard deviation), got {noise!r}.")
    ic_list = [ics] if isinstance(ics, Mapping) else list(ics)
    if not ic_list:
        raise DataError("ics is empty: pass a mapping of initial values, or a list of them.")
    image = _renderer(model, render if render is not None else Blob(x=model.states[0]), params)
    ys = _simulate_all(model, ic_list, ts, params)
    vf = compile_model(model)
    p = jnp.asarray(bind_params(model, params), dtype=float)

    def field(t_, y):
        return vf(t_, y, p)

    def velocity(t_, y):  # dx/dt = dR/dt + J_R f
        return jax.jvp(image, (t_, y), (jnp.ones_like(t_), field(t_, y)))[1]

    def jets(t_, y):
        x, dx = jax.jvp(image, (t_, y), (jnp.ones_like(t_), field(t_, y)))
        ddx = jax.jvp(velocity, (t_, y), (jnp.ones_like(t_), field(t_, y)))[1]
        return x, dx, ddx

    batched = jax.jit(jax.vmap(jax.vmap(jets, in_axes=(0, 0)), in_axes=(None, 0)))
    x, dx, ddx = (np.asarray(a) for a in batched(jnp.asarray(ts), jnp.asarray(ys)))
    if noise > 0:
        x = x + float(noise) * np.random.default_rng(seed).standard_normal(x.shape)
    return Frames(x=x, dx=dx, ddx=ddx, t=ts, states=ys, model=model)


def _simulate_all(model, ic_list, ts, params) -> np.ndarray:
    """States ``(trajectories, T, len(model.states))``: one ensemble solve (one compilation) when
    every trajectory gives the same initial values by the same keys, one solve each otherwise."""
    span = (float(ts[0]), float(ts[-1]))
    # numeric: the frames' derivatives come from the vector field anyway, and a closed-form
    # attempt (symbolic, under the worker's budget) would cost more than the solve
    keys = [tuple(ic) for ic in ic_list]
    if len(ic_list) > 1 and len(set(keys)) == 1:
        ensemble = {k: np.array([float(ic[k]) for ic in ic_list]) for k in ic_list[0]}
        traj = simulate(model, ensemble, span, ts, params, method="numeric")
        out = np.stack([np.asarray(traj[s]) for s in model.states], axis=-1)
        return out if out.shape[0] == len(ic_list) else np.swapaxes(out, 0, 1)
    trajs = [simulate(model, ic, span, ts, params, method="numeric") for ic in ic_list]
    return np.stack([np.stack([np.asarray(tr[s]) for s in model.states], axis=-1) for tr in trajs])


def _renderer(model: Any, render: Any, params: Any) -> Callable[[jax.Array, jax.Array], Any]:
    """``image(t, y)`` for a `Blob` (its SymPy position compiled through the one table) or a function."""
    if isinstance(render, Blob):
        position = compile_exprs(model, [render.x, render.y], title="blob_position")
        p = jnp.asarray(bind_params(model, params), dtype=float)
        return lambda t_, y: render(position(t_, y, p))
    if not callable(render):
        raise DataError(
            f"render must be a Blob or a function of the state vector, got {type(render).__name__}."
        )

    def image(t_, y):
        out = render(y)
        if not isinstance(out, jax.Array) or out.ndim < 1:
            raise DataError(
                f"render must return a JAX array (the image), got {type(out).__name__}: {out!r}; "
                "write the renderer with jax.numpy."
            )
        return out

    return image
