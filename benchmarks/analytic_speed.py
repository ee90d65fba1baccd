"""Closed form against numerical integration, same answers, side by side (the Stokes projectile).

    python benchmarks/analytic_speed.py [--repeats 20]

(a) one trajectory (201 samples on [0, 2.5] s): ``simulate(method="analytic")`` (the compiled
    closed form) against ``simulate(method="numeric")`` (Tsit5, rtol 1e-7, atol 1e-9);
(b) the range map of docs/problems.md §1 on the 100×100 grid v, θ ∈ [5, 85]: the Lambert W closed
    form in one vectorised call against 10,000 numeric solves to the ground-hit event (one
    vmapped ensemble). Both sides get the same inputs: (b1) the grid of speeds and angles (the
    launch velocities, sin and cos, computed inside the timed call on both sides), (b2) the
    10,000 launch velocities (vx, vy);
(c) the same 10,000 launches as trajectories (201 samples each): analytic against numeric.

Times are steady state (after compilation), best of ``--repeats``. The one-time SymPy work
(solving, eliminating t, the Lambert W root) is reported separately. Target: >= 100x for the
grid (b).
"""

from __future__ import annotations

import argparse
import math
import time


def best(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import sympy as sp

    import symml as sm
    from symml._analytic._closed_form import roots, to_jax

    proj = sm.zoo.projectile("stokes")
    x, y, vx, vy = proj.states
    g, k, m = proj.params
    u, w = sm.parameters("v_x v_y", positive=True)
    v, th = sm.parameters("v theta", positive=True)

    start = time.perf_counter()
    sol = sm.solve_analytic(proj, ics={x: 0, y: 0, vx: u, vy: w})
    (D,) = roots(sol.eliminate_t(x, y), x, exclude=[0])
    sympy_s = time.perf_counter() - start
    D_uw = D.subs({g: 9.81, m: 7.26, k: 0.45})
    D_map = jax.jit(to_jax(D_uw.subs({u: v * sp.cos(th), w: v * sp.sin(th)}), [v, th]))
    D_vel = jax.jit(to_jax(D_uw, [u, w]))
    ground = sm.Event(y, direction="down")
    rows = []

    # (a) one trajectory
    ts = jnp.linspace(0, 2.5, 201)
    sm.simulate(proj, saveat=ts, method="analytic")  # builds and caches the flow once

    def one(method):
        return sm.simulate(proj, saveat=ts, method=method).y.block_until_ready()

    diff = float(jnp.max(jnp.abs(one("analytic") - one("numeric"))))
    a_s, n_s = best(lambda: one("analytic"), args.repeats), best(lambda: one("numeric"), args.repeats)
    rows.append(("one trajectory, 201 samples", a_s, n_s, f"max |Δy| {diff:.1e} m"))

    # (b) the range map
    V, TH = jnp.meshgrid(jnp.linspace(5, 85, 100), jnp.radians(jnp.linspace(5, 85, 100)), indexing="ij")
    Vf, THf = V.ravel(), TH.ravel()
    VX, VY = Vf * jnp.cos(THf), Vf * jnp.sin(THf)
    ics = {vx: VX, vy: VY}

    def numeric_range(ics_):
        tr = sm.simulate(proj, ics=ics_, t_span=(0, 20), saveat=2, event=ground, method="numeric")
        return tr.event_state[:, 0].block_until_ready()

    def closed_map():
        return D_map(V, TH).block_until_ready()

    def numeric_map():
        return numeric_range({vx: Vf * jnp.cos(THf), vy: Vf * jnp.sin(THf)})

    def closed_vel():
        return D_vel(VX, VY).block_until_ready()

    def numeric_vel():
        return numeric_range(ics)

    reference = numeric_vel()
    rel = float(jnp.max(jnp.abs(closed_map().ravel() - reference) / reference))
    rel_vel = float(jnp.max(jnp.abs(closed_vel() - reference) / reference))
    slow_repeats = max(3, args.repeats // 4)
    c_s, n_s = best(closed_map, args.repeats), best(numeric_map, slow_repeats)
    rows.append(("range map D(v, θ), 10,000", c_s, n_s, f"max rel ΔD {rel:.1e}"))
    c_s, n_s = best(closed_vel, args.repeats), best(numeric_vel, slow_repeats)
    rows.append(("range from (vx, vy), 10,000", c_s, n_s, f"max rel ΔD {rel_vel:.1e}"))

    # (c) 10,000 trajectories
    def ens(method):
        tr = sm.simulate(proj, ics=ics, saveat=ts, method=method)
        return tr.y.block_until_ready()

    diff = float(jnp.nanmax(jnp.abs(ens("analytic") - ens("numeric"))))
    a_s, n_s = best(lambda: ens("analytic"), slow_repeats), best(lambda: ens("numeric"), 3)
    rows.append(("10,000 trajectories x 201", a_s, n_s, f"max |Δ| {diff:.1e}"))

    print(f"symml {sm.__version__}, JAX {jax.__version__} on {jax.devices()[0].platform}")
    print(f"one-time SymPy work (closed form, t eliminated, Lambert W range): {sympy_s:.2f} s")
    print(f"{'case':<30} {'closed form':>13} {'numeric':>13} {'speed-up':>9}  same answer")
    for name, a, n, note in rows:
        print(f"{name:<30} {a * 1e3:>10.3f} ms {n * 1e3:>10.3f} ms {n / a:>8.0f}x  {note}")
    for name, a, n, _ in rows[1:3]:
        ratio = n / a
        print(f"target >= 100x ({name}): {'met' if ratio >= 100 else 'NOT met'} ({ratio:.0f}x)")
        assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
