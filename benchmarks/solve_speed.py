"""symml.simulate against hand-written diffrax and against SciPy, measured side by side.

    python benchmarks/solve_speed.py [--repeats 30] [--ensemble 1000] [--problems brusselator tiny]

(a) steady-state time per solve after compilation, and compile time (first call, each in a
    fresh Python process so neither side profits from the other's warm caches), for a held-out
    Brusselator (not in the zoo), Lotka–Volterra and the Stokes projectile, same solver (Tsit5),
    tolerances and save times; "tiny" is the Brusselator over t in [0, 0.01] with 2 saves, whose
    solve costs next to nothing, so the difference is symml's fixed per-call overhead. Steady
    times are wall times, the best of interleaved runs (the sides take turns, so a loaded machine
    slows them alike). symml bakes the first span of a configuration into its compiled solve
    and passes later spans as arguments (one more compilation, then none per span): "span as
    argument" is the hand-written function with t0 and t1 passed in instead of baked in as
    constants, against sm.simulate given a new span on every call;
(b) scipy.integrate.solve_ivp (RK45, same tolerances) on a sympy.lambdify right-hand side:
    one trajectory, and an ensemble of initial conditions (symml: one vmapped call).
Targets: steady-state ratio <= 1.10, compile ratio <= 1.25, ensemble speed-up >= 20x.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _timing import child_json, interleaved, median_time

RTOL, ATOL = 1e-7, 1e-9

PROBLEMS = {
    "brusselator": dict(t1=20.0, n=100),
    "tiny": dict(t1=0.01, n=2),
    "lotka_volterra": dict(t1=50.0, n=501),
    "projectile": dict(t1=2.5, n=201),
}


def hand_written(problem: str, span_argument: bool = False):
    """What a competent diffrax user writes for the same problem (the span baked in, or passed)."""
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    spec = PROBLEMS[problem]
    ts = jnp.linspace(0.0, spec["t1"], spec["n"])
    if problem in ("brusselator", "tiny"):

        def f(t, y, args):
            a, b = args
            u, v = y[0], y[1]
            return jnp.stack([a + u * u * v - (b + 1) * u, b * u - u * u * v])

        y0 = jnp.array([1.5, 3.0])
        args = jnp.array([1.0, 3.0])
    elif problem == "lotka_volterra":

        def f(t, y, args):
            a, b, c, d = args
            u, v = y[0], y[1]
            return jnp.stack([a * u - b * u * v, -c * v + d * u * v])

        y0 = jnp.array([0.44249296, 4.6280594])
        args = jnp.array([1.3, 0.9, 0.8, 1.8])
    else:

        def f(t, y, args):
            g, k, m = args
            return jnp.stack([y[2], y[3], -k * y[2] / m, -g - k * y[3] / m])

        y0 = jnp.array([0.0, 0.0, 7.5, 12.990381056766578])
        args = jnp.array([9.81, 0.45, 7.26])

    @jax.jit
    def solve(y0, args, span):
        t0, t1 = (span[0], span[1]) if span_argument else (0.0, spec["t1"])
        save = jnp.linspace(t0, t1, spec["n"]) if span_argument else ts
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(f),
            diffrax.Tsit5(),
            t0,
            t1,
            None,
            y0,
            args=args,
            saveat=diffrax.SaveAt(ts=save),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=65536,
        )
        return sol.ys

    span = jnp.array([0.0, spec["t1"]])
    return lambda: solve(y0, args, span).block_until_ready()


def hand_written_span(problem: str):
    return hand_written(problem, span_argument=True)


def brusselator():
    """The Brusselator, declared here (held out of the zoo): x' = a + x² y - (b + 1) x, y' = b x - x² y."""
    import sympy as sp

    import symml as sm

    t = sm.t
    x, y = sm.states("x y")
    a, b = sm.parameters("a b")
    return sm.Model(
        [sp.Eq(x.diff(t), a + x**2 * y - (b + 1) * x), sp.Eq(y.diff(t), b * x - x**2 * y)],
        defaults={a: 1.0, b: 3.0, x: 1.5, y: 3.0},
        name="brusselator",
    )


def _model(problem: str):
    import symml as sm

    if problem in ("brusselator", "tiny"):
        return brusselator()
    return sm.zoo.lotka_volterra() if problem == "lotka_volterra" else sm.zoo.projectile("stokes")


def with_symml(problem: str):
    import symml as sm

    spec = PROBLEMS[problem]
    model = _model(problem)
    kwargs = dict(t_span=(0.0, spec["t1"]), saveat=spec["n"], rtol=RTOL, atol=ATOL)
    return lambda: sm.simulate(model, **kwargs).y.block_until_ready()


def with_symml_new_span(problem: str):
    """sm.simulate with a new span on every call (t1 moved by 1e-9 relative each time): symml
    bakes the first span of a configuration into the compiled solve and passes later ones as
    arguments, so this is the cost of a sweep over spans (compare with "span as argument")."""
    import itertools

    import symml as sm

    spec = PROBLEMS[problem]
    model = _model(problem)
    count = itertools.count()

    def solve():
        t1 = spec["t1"] * (1.0 + 1e-9 * next(count))
        return sm.simulate(
            model, t_span=(0.0, t1), saveat=spec["n"], rtol=RTOL, atol=ATOL
        ).y.block_until_ready()

    return solve


def with_symml_jit(problem: str):
    """sm.simulate inside the user's own jax.jit: the symbolic layer is traced away entirely."""
    import jax
    import jax.numpy as jnp

    import symml as sm

    spec = PROBLEMS[problem]
    model = _model(problem)
    y0 = jnp.asarray([model.defaults[s] for s in model.states])
    p = jnp.asarray([model.defaults[q] for q in model.params])

    @jax.jit
    def solve(y0, p):
        return sm.simulate(
            model,
            ics=dict(zip(model.states, y0)),
            params=dict(zip(model.params, p)),
            t_span=(0.0, spec["t1"]),
            saveat=spec["n"],
            rtol=RTOL,
            atol=ATOL,
        ).y

    return lambda: solve(y0, p).block_until_ready()


def _first_call(kind: str, problem: str) -> float:
    """Seconds for the first call (trace + compile + run) in a fresh process."""
    code = (
        "import json, time, sys; sys.path.insert(0, 'benchmarks'); import solve_speed as b; "
        f"f = b.{kind}({problem!r}); t0 = time.perf_counter(); f(); "
        "print(json.dumps(time.perf_counter() - t0))"
    )
    return float(child_json(["-c", code]))  # type: ignore[arg-type]


def compare_diffrax(repeats: int, problems=None, compiles: int = 3) -> list[dict]:
    rows = []
    for problem in problems or PROBLEMS:
        fns = [hand_written(problem), with_symml(problem), with_symml_jit(problem)]
        fns += [hand_written_span(problem), with_symml_new_span(problem)]
        hw, sy, sj, hs, sn = interleaved(fns, repeats * 10)
        firsts = [
            (_first_call("hand_written", problem), _first_call("with_symml", problem))
            for _ in range(compiles)
        ]
        c_hw, c_sy = min(f[0] for f in firsts), min(f[1] for f in firsts)  # interleaved, best of
        rows.append(
            dict(
                problem=problem,
                steady_diffrax_ms=1e3 * hw,
                steady_symml_ms=1e3 * sy,
                steady_ratio=sy / hw,
                steady_symml_jit_ms=1e3 * sj,
                steady_jit_ratio=sj / hw,
                steady_span_ms=1e3 * hs,
                steady_new_span_ms=1e3 * sn,
                steady_new_span_ratio=sn / hs,
                compile_diffrax_s=c_hw,
                compile_symml_s=c_sy,
                compile_ratio=c_sy / c_hw,
                overhead_us=1e6 * (sy - hw),
            )
        )
    return rows


def compare_scipy(ensemble: int) -> list[dict]:
    import jax.numpy as jnp
    import numpy as np
    import scipy.integrate
    import sympy as sp

    import symml as sm

    lv = sm.zoo.lotka_volterra()
    u, v = lv.states
    syms = sp.symbols("u v")
    rhs = [lv.rhs[s].xreplace(dict(zip(lv.states, syms))).subs(lv.defaults) for s in lv.states]
    f = sp.lambdify(syms, rhs, "numpy")

    def scipy_rhs(t, y):
        return f(y[0], y[1])

    ts = np.linspace(0, 10, 101)
    rng = np.random.default_rng(0)
    u0 = rng.uniform(0.3, 2.0, ensemble)
    v0 = rng.uniform(0.3, 5.0, ensemble)

    def scipy_one(i=0):
        return scipy.integrate.solve_ivp(
            scipy_rhs, (0, 10), [u0[i], v0[i]], t_eval=ts, rtol=RTOL, atol=ATOL, method="RK45"
        ).y

    def symml_one():
        return sm.simulate(
            lv, ics={u: u0[0], v: v0[0]}, saveat=ts, rtol=RTOL, atol=ATOL
        ).y.block_until_ready()

    def symml_ens():
        return sm.simulate(
            lv, ics={u: jnp.asarray(u0), v: jnp.asarray(v0)}, saveat=ts, rtol=RTOL, atol=ATOL
        ).y.block_until_ready()

    t_sc1 = median_time(scipy_one, 5)
    t_sy1 = median_time(symml_one, 20)
    t0 = time.perf_counter()
    ref = np.stack([scipy_one(i) for i in range(ensemble)])
    t_scN = time.perf_counter() - t0
    t_syN = median_time(symml_ens, 3)
    ys = np.asarray(symml_ens())
    err = float(np.max(np.abs(ys.transpose(0, 2, 1) - ref) / (np.abs(ref) + 1)))
    return [
        dict(case="one trajectory", scipy_s=t_sc1, symml_s=t_sy1, speedup=t_sc1 / t_sy1),
        dict(
            case=f"ensemble of {ensemble}",
            scipy_s=t_scN,
            symml_s=t_syN,
            speedup=t_scN / t_syN,
            max_rel_diff=err,
        ),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--ensemble", type=int, default=1000)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--problems", nargs="*", choices=list(PROBLEMS), help="default: all")
    ap.add_argument("--compiles", type=int, default=3, help="fresh processes per side for compile times")
    ap.add_argument("--no-scipy", action="store_true", help="skip (b)")
    args = ap.parse_args(argv)

    rows = compare_diffrax(args.repeats, args.problems, args.compiles)
    print("\n(a) symml.simulate vs hand-written diffrax (Tsit5, rtol=1e-7, atol=1e-9)")
    print("steady state per solve: hand-written; sm.simulate called from Python; sm.simulate inside jax.jit")
    print("and a new span on every call: the hand-written function taking the span as an argument,")
    print("sm.simulate with a new span each call (ratio to that hand-written function)")
    head = f"{'problem':16s} {'diffrax ms':>10s} {'simulate ms':>11s} {'ratio':>6s} "
    head += f"{'in jit ms':>9s} {'ratio':>6s} {'span arg ms':>11s} {'new span ms':>11s} {'ratio':>6s}"
    print(head + f"   {'compile diffrax s':>17s} {'symml s':>7s} {'ratio':>6s} {'overhead us':>11s}")
    for r in rows:
        print(
            f"{r['problem']:16s} {r['steady_diffrax_ms']:10.3f} {r['steady_symml_ms']:11.3f} "
            f"{r['steady_ratio']:6.2f} "
            f"{r['steady_symml_jit_ms']:9.3f} {r['steady_jit_ratio']:6.2f} "
            f"{r['steady_span_ms']:11.3f} {r['steady_new_span_ms']:11.3f} "
            f"{r['steady_new_span_ratio']:6.2f}   "
            f"{r['compile_diffrax_s']:17.2f} {r['compile_symml_s']:7.2f} {r['compile_ratio']:6.2f} "
            f"{r['overhead_us']:11.1f}"
        )
    if args.no_scipy:
        return 0
    sc = compare_scipy(args.ensemble)
    print("\n(b) symml.simulate vs scipy.integrate.solve_ivp (RK45) on a sympy.lambdify rhs, Lotka–Volterra")
    for r in sc:
        extra = f"   max rel. difference {r['max_rel_diff']:.1e}" if "max_rel_diff" in r else ""
        print(
            f"{r['case']:22s} scipy {r['scipy_s']:9.4f} s   symml {r['symml_s']:9.4f} s   "
            f"speed-up {r['speedup']:7.1f}x{extra}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"diffrax": rows, "scipy": sc}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
