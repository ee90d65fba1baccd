"""Large models: a damped chain of N coupled oscillators, symml against hand-written diffrax.

    python benchmarks/large_model.py [--sizes 10 200 1000] [--repeats 10] [--rounds 3]
                                     [--method numeric] [--quick] [--t1 T]

The chain x_i'' = k (x_{i-1} - 2 x_i + x_{i+1}) - 0.1 x_i' (fixed walls, 2N states) is declared
in SymPy with ``sm.states("x", n=N)`` and solved by ``sm.simulate``; the hand-written side is
the same chain as a vectorised diffrax function (``jnp.pad`` stencil), same solver (Tsit5),
tolerances and save times. Each side runs in a fresh Python process, so neither profits from
the other's caches, and reports (all after the imports):

* declare / sm.Model: writing the equations in SymPy (the user's code), then constructing the
  ``sm.Model`` from them (hand-written: nothing to build);
* first result: from the start (declaring the equations and the build included) to the first
  solution in hand; "symml's part" leaves out the user's own SymPy code (declaring the equations);
* steady: median time per solve after that, and per step; also symml's generated vector
  field (`sm.compile`) dropped into the hand-written solve, which separates the generated code
  from the per-call work of `sm.simulate`.

t ∈ [0, 100] for N <= 200 and [0, 10] for larger N, as in issue 13 (``--t1`` sets one span for
every N, for the cost per step). Targets: steady ratio <= 1.5, first-result ratio <= 2, build < 1 s
at 1000 oscillators (2000 states), cost per step linear in N.
``--quick`` runs N = 10 and 50 with few repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _timing import best_rounds, median_time

RTOL, ATOL, N_SAVE, K = 1e-7, 1e-9, 101, 1.0


def t_end(n: int) -> float:
    forced = os.environ.get("LARGE_MODEL_T1")
    if forced:
        return float(forced)
    return 100.0 if n <= 200 else 10.0


def initial(n: int):
    import numpy as np

    return np.sin(np.pi * np.arange(1, n + 1) / (n + 1)), np.zeros(n)


def hand_written(n: int, repeats: int, field=None) -> dict:
    """What a competent diffrax user writes: the stencil as array operations.

    ``field`` replaces the hand-written vector field (``f(t, y, p)`` with ``p = [k]``), to time
    symml's generated code alone inside the very same solve.
    """
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()

    def stencil(t, y, p):
        x, v = y[:n], y[n:]
        padded = jnp.pad(x, 1)
        return jnp.concatenate([v, p[0] * (padded[:-2] - 2 * x + padded[2:]) - 0.1 * v])

    f = stencil if field is None else field

    ts = jnp.linspace(0.0, t_end(n), N_SAVE)

    @jax.jit
    def solve(y0, k):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(f),
            diffrax.Tsit5(),
            0.0,
            t_end(n),
            None,
            y0,
            args=k,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=1_000_000,
        )
        return sol.ys, sol.stats["num_steps"]

    x0, v0 = initial(n)
    y0, k = jnp.concatenate([jnp.asarray(x0), jnp.asarray(v0)]), jnp.asarray([K])
    ys, steps = solve(y0, k)
    ys.block_until_ready()
    first = time.perf_counter() - start
    return dict(
        build=0.0,
        first=first,
        steady=median_time(lambda: solve(y0, k)[0].block_until_ready(), repeats),
        steps=int(steps),
        last=[float(v) for v in ys[-1]],
    )


def chain_model(n: int):
    import sympy as sp

    import symml as sm

    x = sm.states("x", n=n)
    (k,) = sm.parameters("k")
    wall = [0, *x, 0]
    eqs = [
        # evaluate=False: SymPy's Eq otherwise asks whether both sides are equal, which costs it
        # tens of milliseconds per equation with real-valued functions (before symml sees them).
        sp.Eq(
            x[i].diff(sm.t, 2), k * (wall[i] - 2 * x[i] + wall[i + 2]) - x[i].diff(sm.t) / 10, evaluate=False
        )
        for i in range(n)
    ]
    built = time.perf_counter()
    model = sm.Model(eqs, defaults={k: K}, name="chain")
    return model, x, time.perf_counter() - built


def generated_field(n: int, repeats: int, method: str) -> dict:
    import symml as sm

    model, _, _ = chain_model(n)
    return hand_written(n, repeats, field=sm.compile(model))


def with_symml(n: int, repeats: int, method: str) -> dict:
    import symml as sm

    start = time.perf_counter()
    model, x, build = chain_model(n)
    declare = time.perf_counter() - start - build
    x0, v0 = initial(n)
    ics = {**dict(zip(x, x0.tolist())), **{xi.diff(sm.t): float(v) for xi, v in zip(x, v0)}}

    def solve():
        return sm.simulate(
            model,
            ics=ics,
            t_span=(0.0, t_end(n)),
            saveat=N_SAVE,
            solver="tsit5",
            rtol=RTOL,
            atol=ATOL,
            max_steps=1_000_000,
            method=method,
        )

    traj = solve()
    first = time.perf_counter() - start
    # Steady state: the same call again (the structure of the call is cached by symml).
    steady = median_time(lambda: _block(solve()), repeats)
    return dict(
        build=build,
        declare=declare,
        first=first,
        own=first - declare,
        steady=steady,
        steps=int(traj.num_steps),
        last=[float(v) for v in traj.y[-1]],
        method=traj.method,
    )


def _block(traj):
    import jax

    jax.block_until_ready(traj.y)


def _argv(side: str, n: int, repeats: int, method: str) -> list[str]:
    return [__file__, "--child", side, str(n), str(repeats), method]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 200, 1000])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="fresh-process runs per side, best kept")
    ap.add_argument("--t1", type=float, help="one time span for every N (default: 100, 10 beyond N = 200)")
    ap.add_argument("--quick", action="store_true", help="N = 10 and 50, 3 repeats")
    ap.add_argument(
        "--method",
        default="numeric",
        choices=["numeric", "auto"],
        help="sm.simulate's method: 'auto' also looks for a closed form first (the chain is linear)",
    )
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.t1:
        os.environ["LARGE_MODEL_T1"] = str(args.t1)  # the children read it
    if args.child:
        side, n, repeats, method = args.child[0], int(args.child[1]), int(args.child[2]), args.child[3]
        if side == "hand":
            print(json.dumps(hand_written(n, repeats)))
        else:
            print(json.dumps((with_symml if side == "symml" else generated_field)(n, repeats, method)))
        return
    sizes, repeats, rounds = ([10, 50], 3, 1) if args.quick else (args.sizes, args.repeats, args.rounds)
    print(
        f"damped chain, Tsit5, rtol={RTOL:g}, atol={ATOL:g}, {N_SAVE} saves, method={args.method!r}; "
        f"each side in a fresh process, best of {rounds} interleaved rounds"
    )
    head = (
        "| N (states) | t1 | declare / sm.Model | first result hand / symml | ratio "
        "| symml's part (no declaring) | ratio "
        "| steady hand / symml | ratio "
        "| generated field in the hand-written solve | ratio | µs per step hand / symml | max abs diff |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for n in sizes:
        sides = ("hand", "symml", "field")
        got = best_rounds({side: _argv(side, n, repeats, args.method) for side in sides}, rounds)
        hand, mine, field = (got[side] for side in sides)
        own = mine["own"]
        diff = max(abs(a - b) for a, b in zip(hand["last"], mine["last"]))
        print(
            f"| {n} ({2 * n}) | {t_end(n):g} | {mine['declare']:.2f} s / {mine['build']:.2f} s "
            f"| {hand['first']:.2f} s / {mine['first']:.2f} s | {mine['first'] / hand['first']:.2f} "
            f"| {own:.2f} s | {own / hand['first']:.2f} "
            f"| {hand['steady'] * 1e3:.2f} ms / {mine['steady'] * 1e3:.2f} ms "
            f"| {mine['steady'] / hand['steady']:.2f} "
            f"| {field['steady'] * 1e3:.2f} ms | {field['steady'] / hand['steady']:.2f} "
            f"| {hand['steady'] / hand['steps'] * 1e6:.1f} / {mine['steady'] / mine['steps'] * 1e6:.1f} "
            f"| {diff:.1e} |",
            flush=True,
        )
        if mine["steps"] != hand["steps"]:
            print(f"  (steps differ: hand {hand['steps']}, symml {mine['steps']}; method {mine['method']})")


if __name__ == "__main__":
    main()
