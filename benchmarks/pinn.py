"""sm.pinn against sm.fit and a hand-written JAX PINN on the inverse pendulum, side by side.

The problem of the tutorial: g of theta'' = -(g/l) sin(theta) from 25 points at 1 % noise on
t in [0, 3] (theta(0) = 1), starting from g = 8. Each route reports its error on g, wall time
(compilation included) and the lines of user code it needs; then `sm.pinn`'s loss balancing and
causal weights are switched off one at a time to measure what they contribute, and the forward
problem is checked against `sm.simulate`.

    python benchmarks/pinn.py            # the full comparison (a few minutes on 2 cores)
    python benchmarks/pinn.py --quick    # shorter trainings
"""

from __future__ import annotations

import argparse
import inspect
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import symml as sm


def problem():
    pend = sm.zoo.pendulum(theta0=1.0)
    g = pend.lookup("g")
    data = sm.Dataset.from_model(pend, ts=np.linspace(0, 3, 25), noise=0.01, seed=0, observe=[pend.states[0]])
    return pend, g, data


def with_symml_pinn(pend, g, data, steps, **options):
    res = sm.pinn(pend.with_defaults({g: 8.0}), data, params=[g], verbose=False, **steps, **options)
    return res.params[g]


def with_symml_fit(pend, g, data, steps):
    res = sm.fit(pend.with_defaults({g: 8.0}), data, params=[g])
    return res.params[g]


def hand_written(pend, g, data, steps):
    """The tutorial's PINN in plain equinox + optax: fixed weights, fixed collocation, Adam only."""
    t_obs, th_obs = jnp.asarray(data.t), jnp.asarray(data[pend.states[0]])
    net = eqx.nn.MLP(1, 1, 32, 3, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    params = (net, jnp.asarray(8.0))
    tc = jnp.linspace(0, 3, 256)

    def theta(net, t):
        return net(jnp.atleast_1d(t / 1.5 - 1.0))[0]

    def loss(params):
        net, g_ = params
        d1 = jax.grad(lambda t: theta(net, t))
        d2 = jax.vmap(jax.grad(d1))(tc)
        res = d2 + g_ * jnp.sin(jax.vmap(lambda t: theta(net, t))(tc))
        ic = (theta(net, 0.0) - 1.0) ** 2 + d1(0.0) ** 2
        fit = jnp.mean((jax.vmap(lambda t: theta(net, t))(t_obs) - th_obs) ** 2)
        return jnp.mean(res**2) + ic + fit

    opt = optax.adam(1e-3)
    arrays, static = eqx.partition(params, eqx.is_array)
    state = opt.init(arrays)

    @jax.jit
    def step(arrays, state):
        grads = jax.grad(lambda a: loss(eqx.combine(a, static)))(arrays)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(arrays, updates), state

    for _ in range(steps["hand_steps"]):
        arrays, state = step(arrays, state)
    return float(eqx.combine(arrays, static)[1])


def user_lines(fn) -> int:
    """Non-blank, non-comment, non-docstring lines of the route's function body."""
    src = inspect.getsource(fn).splitlines()[1:]
    body = [s.strip() for s in src if s.strip() and not s.strip().startswith("#")]
    return len([s for s in body if not s.startswith('"""')])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter trainings")
    args = ap.parse_args()
    n_adam, n_lbfgs = (800, 300) if args.quick else (2000, 500)
    steps = dict(optimizer=sm.Adam(steps=n_adam), polish=sm.LBFGS(steps=n_lbfgs))
    pend, g, data = problem()

    rows = []
    for name, fn, kw in (
        ("sm.pinn", with_symml_pinn, steps),
        ("sm.fit", with_symml_fit, steps),
        ("hand-written JAX PINN", hand_written, {"hand_steps": 2 * n_adam if args.quick else 10_000}),
    ):
        t0 = time.perf_counter()
        est = fn(pend, g, data, kw)
        rows.append((name, est, time.perf_counter() - t0, user_lines(fn)))
    print(f"{'route':24s} {'g':>9s} {'error':>9s} {'wall [s]':>9s} {'user lines':>11s}")
    for name, est, wall, lines in rows:
        print(f"{name:24s} {est:9.4f} {100 * (est / 9.81 - 1):+8.3f}% {wall:9.1f} {lines:11d}")

    print("\nsm.pinn ablations (inverse problem):")
    for label, opts in (
        ("default (grad_norm, causal)", {}),
        ("learning-rate annealing", {"balance": "annealing"}),
        ("no balancing", {"balance": None}),
        ("no causal weights", {"causal": None}),
    ):
        t0 = time.perf_counter()
        est = with_symml_pinn(pend, g, data, steps, **opts)
        print(
            f"  {label:30s} g = {est:.4f} ({100 * (est / 9.81 - 1):+.3f} %), {time.perf_counter() - t0:.1f} s"
        )

    print("\nsm.pinn forward problems, max error / amplitude (worst state):")
    lv = sm.zoo.lotka_volterra()
    for label, model, span, opts in (
        ("pendulum [0, 6], windows='auto' (default)", pend, (0, 6), {}),
        ("pendulum [0, 6], one window, causal", pend, (0, 6), {"windows": 1, **steps}),
        ("pendulum [0, 6], one window, no causal", pend, (0, 6), {"windows": 1, "causal": None, **steps}),
        ("Lotka-Volterra [0, 20], windows='auto'", lv, (0, 20), {}),
        ("Lotka-Volterra [0, 20], one window", lv, (0, 20), {"windows": 1, **steps}),
    ):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sm.TrainingWarning)  # the one-window rows warn
            res = sm.pinn(model, t_span=span, verbose=False, **opts)
        err = 100 * max(res.compare().values())
        print(f"  {label:44s} {err:8.3f} %, {len(res.nets):2d} windows, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
