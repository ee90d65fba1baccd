"""Stiff problems: sm.simulate(solver="auto") against hand-written diffrax Kvaerno5 and SciPy.

    python benchmarks/stiff.py [--repeats 5]

Robertson's kinetics (no parameters; stiff only once the intermediate species has formed, so a
choice made at t0 picks an explicit solver) to t1 = 2e4 and 1e5, rtol=1e-6, atol=1e-10, 20
saved times. symml's "auto" starts with Tsit5, detects the stability-limited step size and
restarts with Kvaerno5 (its time includes that explicit attempt). Compared with: the same
Kvaerno5 solve written by hand in diffrax (jitted), and scipy.integrate.solve_ivp with LSODA
and Radau on a sympy.lambdify right-hand side (with its lambdified Jacobian). Steady times are
CPU times (time.process_time), the best of interleaved runs.
Targets: ratio to hand-written Kvaerno5 <= 1.25; faster than LSODA.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

RTOL, ATOL, N_SAVE = 1e-6, 1e-10, 20


def robertson():
    import sympy as sp

    import symml as sm

    t = sm.t
    y1, y2, y3 = sm.states("y1 y2 y3")
    return sm.Model(
        [
            sp.Eq(y1.diff(t), -sp.Rational(4, 100) * y1 + 10**4 * y2 * y3),
            sp.Eq(y2.diff(t), sp.Rational(4, 100) * y1 - 10**4 * y2 * y3 - 3 * 10**7 * y2**2),
            sp.Eq(y3.diff(t), 3 * 10**7 * y2**2),
        ],
        defaults={y1: 1.0, y2: 0.0, y3: 0.0},
        name="robertson",
    )


def hand_written(t1: float):
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def f(t, y, args):
        return jnp.stack(
            [
                -0.04 * y[0] + 1e4 * y[1] * y[2],
                0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                3e7 * y[1] ** 2,
            ]
        )

    ts = jnp.linspace(0.0, t1, N_SAVE)

    @jax.jit
    def solve(y0):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(f),
            diffrax.Kvaerno5(),
            0.0,
            t1,
            None,
            y0,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=65536,
        ).ys

    y0 = jnp.array([1.0, 0.0, 0.0])
    return lambda: np.asarray(solve(y0))


def with_symml(model, t1: float):
    import symml as sm

    return lambda: np.asarray(
        sm.simulate(model, t_span=(0.0, t1), saveat=N_SAVE, solver="auto", rtol=RTOL, atol=ATOL).y
    )


def with_scipy(model, t1: float, method: str):
    import scipy.integrate
    import sympy as sp

    syms = sp.symbols("a b c")
    rhs = [model.rhs[s].xreplace(dict(zip(model.states, syms))) for s in model.states]
    f = sp.lambdify(syms, rhs, "numpy")
    jac = sp.lambdify(syms, sp.Matrix(rhs).jacobian(syms), "numpy")
    ts = np.linspace(0.0, t1, N_SAVE)

    def solve():
        return scipy.integrate.solve_ivp(
            lambda t, y: f(*y),
            (0.0, t1),
            [1.0, 0.0, 0.0],
            method=method,
            t_eval=ts,
            rtol=RTOL,
            atol=ATOL,
            jac=lambda t, y: np.asarray(jac(*y), dtype=float),
        ).y.T

    return solve


def _interleaved(fns, repeats):
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--t1", type=float, nargs="*", default=[2e4, 1e5])
    args = ap.parse_args(argv)
    import symml as sm

    model = robertson()
    print(
        f"Robertson kinetics, rtol={RTOL:g}, atol={ATOL:g}, {N_SAVE} saves; "
        f"CPU seconds, best of {args.repeats}"
    )
    print(
        f"{'t1':>8s} {'hand Kvaerno5':>13s} {'symml auto':>10s} {'ratio':>6s} {'LSODA':>8s} {'Radau':>8s} "
        f"{'LSODA/symml':>11s}  first call hand / symml   max rel. diff vs LSODA"
    )
    for t1 in args.t1:
        hw, sy = hand_written(t1), with_symml(model, t1)
        lsoda, radau = with_scipy(model, t1, "LSODA"), with_scipy(model, t1, "Radau")
        c0 = time.perf_counter()
        hw()
        c_hw = time.perf_counter() - c0
        c0 = time.perf_counter()
        ys = sy()
        c_sy = time.perf_counter() - c0
        traj = sm.simulate(model, t_span=(0.0, t1), saveat=N_SAVE, solver="auto", rtol=RTOL, atol=ATOL)
        ref = lsoda()
        diff = float(np.max(np.abs(ys - ref) / (np.abs(ref) + 1e-6)))
        t_hw, t_sy, t_ls, t_ra = _interleaved([hw, sy, lsoda, radau], args.repeats)
        print(
            f"{t1:8.0e} {t_hw:13.4f} {t_sy:10.4f} {t_sy / t_hw:6.2f} {t_ls:8.4f} {t_ra:8.4f} "
            f"{t_ls / t_sy:10.1f}x  {c_hw:8.2f} s / {c_sy:5.2f} s   {diff:.1e}"
        )
        print(f"         traj.solver = {traj.solver!r}: {traj.solver_reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
