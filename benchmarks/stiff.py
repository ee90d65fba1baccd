"""Stiff problems: sm.simulate against hand-written diffrax (Kvaerno5) and SciPy, side by side.

    python benchmarks/stiff.py [--repeats 10] [--t1 2e4 1e5] [--groups 1 10 100]

(a) Robertson's kinetics (`sm.zoo.robertson()`, no parameters; stiff only once the intermediate
    species has formed, so a choice made at t0 picks an explicit solver) to t1 = 2e4 and 1e5,
    rtol=1e-6, atol=1e-10, 20 saved times. symml's ``solver="auto"`` starts with Tsit5, detects
    the stability-limited step size and restarts with the Rosenbrock method Rodas4 on the exact
    Jacobian (its time includes that explicit attempt); ``"rodas4"`` asks for it directly.
    Compared with the Kvaerno5 solve written by hand in diffrax (jitted; also with the
    step-size controller PIDController(pcoeff=0.3, icoeff=0.4)), and scipy.integrate.solve_ivp
    (LSODA, Radau, BDF) on a sympy.lambdify right-hand side with its lambdified Jacobian.
(b) G independent copies of the kinetics (`sm.zoo.robertson(groups=G)`, 3G states, t1 = 1e4):
    symml finds the Jacobian's G blocks of 3 and factors them separately; the hand-written
    diffrax side is the vectorised kinetics with Kvaerno5 (dense Newton solves); SciPy gets the
    exact Jacobian as a sparse matrix (BDF, Radau) or dense (LSODA, which takes no sparsity).

Steady times are wall times, the best of interleaved runs; "first call" is the
wall time of the first call in this process (tracing and compilation included).
Targets: Robertson with "auto" at most 1.25x hand-written Kvaerno5 and faster than LSODA.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _timing import interleaved

RTOL, ATOL, N_SAVE = 1e-6, 1e-10, 20


def rates(groups: int):
    s = 1.0 + np.arange(groups) / groups if groups > 1 else np.ones(1)
    return 0.04 * s, 1e4, 3e7 / s


def hand_written(groups: int, t1: float, controller: str = "pid"):
    """The kinetics vectorised over the copies, Kvaerno5, as a diffrax user writes them."""
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    k1, k2, k3 = (jnp.asarray(k) for k in rates(groups))

    def f(t, y, args):
        a, b, c = y[0::3], y[1::3], y[2::3]
        da = -k1 * a + k2 * b * c
        dc = k3 * b**2
        return jnp.stack([da, -da - dc, dc], -1).reshape(-1)

    ts = jnp.linspace(0.0, t1, N_SAVE)
    pid = (
        diffrax.PIDController(rtol=RTOL, atol=ATOL)
        if controller == "pid"
        else diffrax.PIDController(rtol=RTOL, atol=ATOL, pcoeff=0.3, icoeff=0.4)
    )

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
            stepsize_controller=pid,
            max_steps=65536,
        ).ys

    y0 = jnp.tile(jnp.array([1.0, 0.0, 0.0]), groups)
    return lambda: np.asarray(solve(y0))


def with_symml(model, t1: float, solver: str):
    import symml as sm

    return lambda: np.asarray(
        sm.simulate(model, t_span=(0.0, t1), saveat=N_SAVE, solver=solver, rtol=RTOL, atol=ATOL).y
    )


def with_scipy(model, t1: float, method: str):
    """solve_ivp on sympy.lambdify'd right-hand side and Jacobian (sparse for BDF and Radau)."""
    import scipy.integrate
    import scipy.sparse
    import sympy as sp

    from symml._compile._jacobian import jacobian_entries

    n = len(model.states)
    syms = sp.symbols(f"s0:{n}")
    back = dict(zip(model.states, syms))
    rhs = sp.lambdify([syms], [model.rhs[s].xreplace(back) for s in model.states], "numpy")
    entries, _ = jacobian_entries(model)
    rows, cols = (np.asarray(ix) for ix in zip(*entries))
    values = sp.lambdify([syms], [e.xreplace(back) for e in entries.values()], "numpy")
    sparse = method in ("BDF", "Radau")

    def jac(t, y):
        v = np.asarray(values(y), dtype=float)
        if sparse:
            return scipy.sparse.csc_matrix((v, (rows, cols)), shape=(n, n))
        m = np.zeros((n, n))
        m[rows, cols] = v
        return m

    y0 = np.tile([1.0, 0.0, 0.0], n // 3)
    ts = np.linspace(0.0, t1, N_SAVE)

    def solve():
        return scipy.integrate.solve_ivp(
            lambda t, y: np.asarray(rhs(y), dtype=float),
            (0.0, t1),
            y0,
            method=method,
            t_eval=ts,
            rtol=RTOL,
            atol=ATOL,
            jac=jac,
        ).y.T

    return solve


def _first(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def robertson_table(t1s, repeats: int) -> None:
    import symml as sm

    model = sm.zoo.robertson()
    print(
        f"(a) Robertson kinetics, rtol={RTOL:g}, atol={ATOL:g}, {N_SAVE} saves; ms, best of "
        f"{repeats} interleaved"
    )
    head = (
        "| t1 | hand Kvaerno5 | hand Kvaerno5, PID 0.3/0.4 | symml auto | ratio | symml rodas4 "
        "| LSODA | Radau | BDF | LSODA / symml auto | first call hand / symml | max rel. diff vs LSODA |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for t1 in t1s:
        fns = {
            "hand": hand_written(1, t1),
            "hand_pid": hand_written(1, t1, "pid34"),
            "auto": with_symml(model, t1, "auto"),
            "rodas4": with_symml(model, t1, "rodas4"),
            "LSODA": with_scipy(model, t1, "LSODA"),
            "Radau": with_scipy(model, t1, "Radau"),
            "BDF": with_scipy(model, t1, "BDF"),
        }
        _, c_hw = _first(fns["hand"])
        ys, c_sy = _first(fns["auto"])
        ref = fns["LSODA"]()
        diff = float(np.max(np.abs(ys - ref) / (np.abs(ref) + 1e-6)))
        best = dict(zip(fns, interleaved(list(fns.values()), repeats)))
        ms = {k: 1e3 * v for k, v in best.items()}
        print(
            f"| {t1:.0e} | {ms['hand']:.2f} | {ms['hand_pid']:.2f} | {ms['auto']:.2f} "
            f"| {best['auto'] / best['hand']:.2f} | {ms['rodas4']:.2f} | {ms['LSODA']:.2f} "
            f"| {ms['Radau']:.2f} | {ms['BDF']:.2f} | {best['LSODA'] / best['auto']:.1f}x "
            f"| {c_hw:.2f} s / {c_sy:.2f} s | {diff:.1e} |",
            flush=True,
        )
    traj = sm.simulate(model, t_span=(0.0, t1s[-1]), saveat=N_SAVE, solver="auto", rtol=RTOL, atol=ATOL)
    print(f"traj.solver = {traj.solver!r}: {traj.solver_reason}\n")


def groups_table(groups_list, repeats: int, t1: float = 1e4) -> None:
    import symml as sm

    print(
        f"(b) G copies of Robertson's kinetics (3G states), t1={t1:g}, rtol={RTOL:g}, atol={ATOL:g}; "
        f"ms, best of {repeats} interleaved"
    )
    head = (
        "| G (states) | hand Kvaerno5 (dense) | symml auto (blocks) | hand / symml | LSODA (dense jac) "
        "| BDF (sparse jac) | Radau (sparse jac) | best SciPy / symml | first call hand / symml "
        "| max rel. diff vs BDF |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for g in groups_list:
        model = sm.zoo.robertson(groups=g)
        fns = {
            "hand": hand_written(g, t1),
            "auto": with_symml(model, t1, "auto"),
            "LSODA": with_scipy(model, t1, "LSODA"),
            "BDF": with_scipy(model, t1, "BDF"),
            "Radau": with_scipy(model, t1, "Radau"),
        }
        _, c_hw = _first(fns["hand"])
        ys, c_sy = _first(fns["auto"])
        ref = fns["BDF"]()
        diff = float(np.max(np.abs(ys - ref) / (np.abs(ref) + 1e-6)))
        best = dict(zip(fns, interleaved(list(fns.values()), repeats)))
        ms = {k: 1e3 * v for k, v in best.items()}
        scipy_best = min(best["LSODA"], best["BDF"], best["Radau"])
        print(
            f"| {g} ({3 * g}) | {ms['hand']:.1f} | {ms['auto']:.1f} | {best['hand'] / best['auto']:.1f}x "
            f"| {ms['LSODA']:.1f} | {ms['BDF']:.1f} | {ms['Radau']:.1f} | {scipy_best / best['auto']:.1f}x "
            f"| {c_hw:.2f} s / {c_sy:.2f} s | {diff:.1e} |",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--t1", type=float, nargs="*", default=[2e4, 1e5])
    ap.add_argument("--groups", type=int, nargs="*", default=[1, 10, 100])
    args = ap.parse_args(argv)
    if args.t1:
        robertson_table(args.t1, args.repeats)
    if args.groups:
        groups_table(args.groups, max(2, args.repeats // 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
