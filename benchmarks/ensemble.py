"""A 10 000-member Lorenz ensemble: sm.simulate against a hand-written diffrax vmap.

    python benchmarks/ensemble.py [--members 10000] [--repeats 3] [--budget-mib 8]

Lorenz (sigma, rho, beta per member drawn at random, seed 0, as in DiffEqGPU's ensemble
benchmark), t in [0, 1], 11 saved times, Tsit5, rtol=1e-7, atol=1e-9, float64. symml solves the
ensemble in one vmapped call, or in chunks when --budget-mib is below its estimate (the results
are identical); a hand-written jitted jax.vmap of diffrax.diffeqsolve is the reference. Times
are wall-clock seconds (the solve is multi-threaded by XLA), the best of interleaved runs, after
compilation. With several devices (GPUs, or XLA_FLAGS=--xla_force_host_platform_device_count=N
on a CPU) symml shards the members over them. Published: DiffEqGPU 0.108 s on a GPU, Julia
serial on a CPU 68.8 s (SciML's diffeqpy README).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _timing import interleaved

RTOL, ATOL, N_SAVE, T1 = 1e-7, 1e-9, 11, 1.0


def members(n: int):
    rng = np.random.default_rng(0)
    return {
        "sigma": rng.uniform(9.0, 11.0, n),
        "rho": rng.uniform(26.0, 30.0, n),
        "beta": rng.uniform(2.0, 3.0, n),
    }


def hand_written(n: int):
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def f(t, y, args):
        s, r, b = args
        return jnp.stack([s * (y[1] - y[0]), y[0] * (r - y[2]) - y[1], y[0] * y[1] - b * y[2]])

    ts = jnp.linspace(0.0, T1, N_SAVE)

    def one(p):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(f),
            diffrax.Tsit5(),
            0.0,
            T1,
            None,
            jnp.array([1.0, 0.0, 0.0]),
            args=p,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=65536,
        ).ys

    solve = jax.jit(jax.vmap(one))
    m = members(n)
    p = jnp.stack([jnp.asarray(m["sigma"]), jnp.asarray(m["rho"]), jnp.asarray(m["beta"])], -1)
    return lambda: np.asarray(solve(p))


def with_symml(n: int, budget: float | None):
    import symml as sm

    model = sm.zoo.lorenz()
    x, y, z = model.states
    m = members(n)
    params = {name: m[name] for name in ("sigma", "rho", "beta")}
    ics = {x: 1.0, y: 0.0, z: 0.0}
    return lambda: np.asarray(
        sm.simulate(
            model,
            ics=ics,
            params=params,
            t_span=(0.0, T1),
            saveat=N_SAVE,
            rtol=RTOL,
            atol=ATOL,
            method="numeric",
            memory_budget=budget,
        ).y
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget-mib", type=float, default=8.0, help="memory budget of the chunked run")
    args = ap.parse_args(argv)
    import jax

    from symml._solve._ensemble import chunk_members, member_bytes

    n = args.members
    budget = args.budget_mib * 2**20
    per = member_bytes(3, 3, N_SAVE, implicit=False)
    chunk = chunk_members(n, per, budget, jax.local_device_count())
    fns = {"hand-written vmap": hand_written(n), "sm.simulate": with_symml(n, None)}
    fns[f"sm.simulate, chunks of {chunk}"] = with_symml(n, budget)
    first = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        first[name] = (fn(), time.perf_counter() - t0)
    ref = first["hand-written vmap"][0]
    # wall time: XLA runs the vmapped solve on several threads
    best = dict(zip(fns, interleaved(list(fns.values()), args.repeats, clock=time.perf_counter, warmup=0)))
    print(
        f"Lorenz ensemble, {n} members, t in [0, {T1:g}], {N_SAVE} saves, Tsit5 rtol={RTOL:g}; "
        f"{jax.local_device_count()} {jax.devices()[0].platform} device(s); estimate {per} B/member"
    )
    base = best["hand-written vmap"]
    for name in fns:
        diff = float(np.max(np.abs(first[name][0] - ref)))
        print(
            f"{name:28s} {best[name]:8.3f} s  ratio {best[name] / base:5.2f}   first call "
            f"{first[name][1]:6.2f} s   max abs. diff vs hand-written {diff:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
