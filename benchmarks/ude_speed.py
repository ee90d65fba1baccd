"""sm.train against the same universal-ODE training written by hand in diffrax + equinox + optax.

    python benchmarks/ude_speed.py [--steps 300] [--repeats 3] [--floor-repeats 2] [--part overhead|floor|all]

The problem is docs/problems.md §3: Lotka–Volterra, u' = 1.3 u + U0(u, v), v' = -0.8 v + U1(u, v)
(the interactions -0.9 u v and +1.8 u v left to a 2->32->32->2 tanh MLP), 21 samples on
t in [0, 5] with 5 % noise. Every measurement runs in a fresh Python process, so neither side
profits from the other's compilation caches.

(a) overhead: the *same* training on both sides (same initial weights and input scaling, Adam
    with the same warmup-cosine schedule, Tsit5, rtol 1e-6, atol 1e-8, checkpointed adjoint with
    max_steps 4096 checkpoints): time per step after compilation, compile time, final loss.
    Targets: per-step ratio <= 1.10, compile ratio <= 1.25.
(b) time to the noise floor: the hand-written schedule of docs/problems.md §3 (5000 Adam steps at
    lr 1e-3, then 1000 optax L-BFGS steps, rtol = atol = 1e-6, diffrax's default adjoint)
    against sm.train with its defaults. The noise floor is the MSE of the true solution against
    the noisy data. Reported: seconds until the loss first reaches the floor (including
    compilation), total seconds, final loss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = 0.05
WIDTH, DEPTH = 32, 2
RTOL, ATOL, MAX_STEPS = 1e-6, 1e-8, 4096


def problem():
    """Data, the UDE model, the noise floor (shared by both sides; not timed)."""
    import numpy as np
    import sympy as sp

    import symml as sm

    lv = sm.zoo.lotka_volterra()
    ts = np.linspace(0.0, 5.0, 21)
    data = sm.Dataset.from_model(lv, ts=ts, noise=NOISE, seed=0)
    u, v = lv.states
    a, c = lv.params[0], lv.params[2]
    U = sm.neural("U", inputs=[u, v], outputs=2, width=WIDTH, depth=DEPTH)
    ude = sm.Model(
        [sp.Eq(u.diff(sm.t), a * u + U[0]), sp.Eq(v.diff(sm.t), -c * v + U[1])],
        defaults={a: 1.3, c: 0.8},
        name="lv_ude",
    )
    Y = np.stack([data[u], data[v]], axis=-1)
    truth = np.asarray(sm.simulate(lv, saveat=ts).y)
    floor = float(np.mean((truth - Y) ** 2))
    y0 = np.array([0.44249296, 4.6280594])
    return dict(data=data, ude=ude, ts=ts, Y=Y, y0=y0, floor=floor)


# ----------------------------------------------------------------------------- hand-written


def hand_written(steps: int, schedule: str, lbfgs_steps: int, symml_init: bool, adjoint_checkpoints):
    """What a competent diffrax user writes: an eqx.Module vector field, a jitted step, a loop."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    jax.config.update("jax_enable_x64", True)
    P = problem()
    ts, Y, y0 = jnp.asarray(P["ts"]), jnp.asarray(P["Y"]), jnp.asarray(P["y0"])
    rtol, atol = (RTOL, ATOL) if schedule == "symml" else (1e-6, 1e-6)
    t_start = time.perf_counter()
    if symml_init:
        # Identical starting point to sm.train: its initial network and input standardisation.
        import symml as sm
        from symml._train import UDEProblem

        solve = sm.Solve(solver="tsit5", rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS, adjoint="checkpoint")
        sm_problem = UDEProblem(P["ude"], P["data"], solve=solve, key=jax.random.PRNGKey(0))
        net = sm_problem.networks_of(sm_problem.theta0)["U"]
        mlp, shift, scale = net.mlp, net.in_shift, net.in_scale
        t_start = time.perf_counter()
    else:
        mlp = eqx.nn.MLP(2, 2, WIDTH, DEPTH, activation=jnp.tanh, key=jax.random.PRNGKey(0))
        shift, scale = jnp.zeros(2), jnp.ones(2)

    class UDE(eqx.Module):
        mlp: eqx.nn.MLP
        shift: jax.Array
        scale: jax.Array

        def __call__(self, t, y, args):
            nn = self.mlp((y - self.shift) / self.scale)
            return jnp.stack([1.3 * y[0] + nn[0], -0.8 * y[1] + nn[1]])

    model = UDE(mlp, shift, scale)
    params, static = eqx.partition(model, eqx.is_array)
    adjoint = diffrax.RecursiveCheckpointAdjoint(checkpoints=adjoint_checkpoints)

    def loss(mlp_params):
        m = eqx.combine(eqx.tree_at(lambda p: p.mlp, params, mlp_params), static)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(m), diffrax.Tsit5(), ts[0], ts[-1], None, y0,
            saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            adjoint=adjoint, max_steps=MAX_STEPS,
        )  # fmt: skip
        return jnp.mean((sol.ys - Y) ** 2)

    theta = params.mlp
    if schedule == "symml":
        sched = optax.warmup_cosine_decay_schedule(1e-3, 1e-2, max(steps // 20, 1), steps, 1e-4)
    else:
        sched = 1e-3
    opt = optax.adam(sched)

    @jax.jit
    def step(theta, state):
        value, grads = jax.value_and_grad(loss)(theta)
        updates, state = opt.update(grads, state, theta)
        return optax.apply_updates(theta, updates), state, value

    state = opt.init(theta)
    losses, stamps = [], []
    t0 = time.perf_counter()
    theta, state, value = step(theta, state)
    value.block_until_ready()
    first = time.perf_counter() - t0
    losses.append(value)
    stamps.append((1, time.perf_counter() - t_start))
    t1 = time.perf_counter()
    for i in range(1, steps):
        theta, state, value = step(theta, state)
        losses.append(value)
        if (i + 1) % 100 == 0 or i == steps - 1:
            value.block_until_ready()
            stamps.append((i + 1, time.perf_counter() - t_start))
    per_step = (time.perf_counter() - t1) / max(steps - 1, 1)
    out = dict(first_call=first, per_step=per_step, compile=first - per_step)
    if lbfgs_steps:
        lb = optax.lbfgs()
        vg = optax.value_and_grad_from_state(loss)

        @jax.jit
        def lstep(theta, state):
            value, grads = vg(theta, state=state)
            updates, state = lb.update(grads, state, theta, value=value, grad=grads, value_fn=loss)
            return optax.apply_updates(theta, updates), state, value

        # Strong dtypes in the initial state: otherwise the second call re-compiles everything
        # (optax's initial L-BFGS state has weakly typed scalars).
        lstate = jax.tree_util.tree_map(lambda x: jnp.array(x, dtype=x.dtype), lb.init(theta))
        t0 = time.perf_counter()
        theta, lstate, value = lstep(theta, lstate)
        value.block_until_ready()
        out["lbfgs_first_call"] = time.perf_counter() - t0
        losses.append(value)
        stamps.append((steps + 1, time.perf_counter() - t_start))
        for i in range(1, lbfgs_steps):
            theta, lstate, value = lstep(theta, lstate)
            losses.append(value)
            if (i + 1) % 50 == 0 or i == lbfgs_steps - 1:
                value.block_until_ready()
                stamps.append((steps + i + 1, time.perf_counter() - t_start))
    losses = np.asarray(jnp.stack(losses))
    final = float(loss(theta))
    # Times per step: interpolated between synchronisation stamps.
    ks = np.array([0] + [k for k, _ in stamps])
    tt = np.array([0.0] + [s for _, s in stamps])
    times = np.interp(np.arange(1, losses.size + 1), ks, tt)
    hit = np.flatnonzero(losses <= P["floor"])
    out.update(
        final_loss=final,
        total=time.perf_counter() - t_start,
        time_to_floor=float(times[hit[0]]) if hit.size else None,
        floor=P["floor"],
        iterations=int(losses.size),
    )
    return out


# ----------------------------------------------------------------------------- symml


def with_symml(steps: int | None, polish: int | None, same_as_hand: bool):
    import jax

    import symml as sm

    P = problem()
    kwargs = {}
    if same_as_hand:
        solve = sm.Solve(rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS)
        kwargs = dict(optimizer=sm.Adam(steps=steps), polish=None, solve=solve)
    else:
        if steps is not None:
            kwargs["optimizer"] = sm.Adam(steps=steps)
        if polish is not None:
            kwargs["polish"] = sm.LBFGS(steps=polish)
    jax.block_until_ready(jax.numpy.zeros(1))
    t_start = time.perf_counter()
    trained = sm.train(P["ude"], P["data"], seed=0, verbose=False, **kwargs)
    total = time.perf_counter() - t_start
    h = trained.history
    n_main = int((h.phase == 0).sum())
    tm = trained.timing
    return dict(
        compile=tm["compile"],
        per_step=tm["main"] / max(n_main, 1),
        final_loss=float(h.final),
        total=total,
        time_to_floor=h.time_to(P["floor"]),
        floor=P["floor"],
        iterations=len(h),
        mse=trained.mse(),
        timing=tm,
    )


# ----------------------------------------------------------------------------- driver


def _child(kind: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--steps", str(args.steps)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), ROOT) if p))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="Adam steps of the overhead comparison")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per side for (a)")
    ap.add_argument("--floor-repeats", type=int, default=2, help="fresh processes per side for (b)")
    ap.add_argument("--part", default="all", choices=["overhead", "floor", "all"])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child == "hand_same":
            res = hand_written(args.steps, "symml", 0, True, MAX_STEPS)
        elif args.child == "symml_same":
            res = with_symml(args.steps, 0, True)
        elif args.child == "hand_full":
            res = hand_written(5000, "problems", 1000, False, None)
        elif args.child == "symml_default":
            res = with_symml(None, None, False)
        else:
            raise SystemExit(f"unknown child {args.child}")
        print(json.dumps(res, default=float))
        return
    if args.part in ("overhead", "all"):
        hs, ss = [], []
        for _ in range(args.repeats):  # interleaved, so machine load hits both alike
            hs.append(_child("hand_same", args))
            ss.append(_child("symml_same", args))
        # The best of the repeats: other work on the machine only ever slows a run down.
        med = lambda rs, k: min(r[k] for r in rs)  # noqa: E731
        print(f"(a) same training, {args.steps} Adam steps, best of {args.repeats} fresh processes each")
        print(f"{'':22s}{'hand-written':>14s}{'sm.train':>12s}{'ratio':>8s}")
        for k, label in (("per_step", "time per step [ms]"), ("compile", "compile [s]")):
            h, s = med(hs, k), med(ss, k)
            scale = 1e3 if k == "per_step" else 1.0
            print(f"{label:22s}{h * scale:14.3f}{s * scale:12.3f}{s / h:8.2f}")
        print(f"{'final loss':22s}{med(hs, 'final_loss'):14.6g}{med(ss, 'final_loss'):12.6g}")
    if args.part in ("floor", "all"):
        hs, ss = [], []
        for _ in range(args.floor_repeats):
            hs.append(_child("hand_full", args))
            ss.append(_child("symml_default", args))
        h, s = hs[0], ss[0]
        floor = h["floor"]
        print(f"\n(b) problems.md §3 to the noise floor ({floor:.5g} = MSE of the truth vs the noisy data),")
        print(f"    best of {args.floor_repeats} fresh processes each; times include compilation")
        print(f"{'':26s}{'hand-written':>24s}{'sm.train':>14s}")
        print(f"{'schedule':26s}{'5000 Adam + 1000 L-BFGS':>24s}{'defaults':>14s}")

        def best(rs, k):
            vals = [r[k] for r in rs if r[k] is not None]
            return min(vals) if vals else None

        ttf_h, ttf_s = best(hs, "time_to_floor"), best(ss, "time_to_floor")
        fmt = lambda x: "never" if x is None else f"{x:.2f}"  # noqa: E731
        print(f"{'time to noise floor [s]':26s}{fmt(ttf_h):>24s}{fmt(ttf_s):>14s}")
        print(f"{'total time [s]':26s}{best(hs, 'total'):24.2f}{best(ss, 'total'):14.2f}")
        print(f"{'compile [s]':26s}{'':>24s}{best(ss, 'compile'):14.2f}")
        print(f"{'iterations':26s}{h['iterations']:24d}{s['iterations']:14d}")
        print(f"{'final loss':26s}{h['final_loss']:24.6g}{s['final_loss']:14.6g}")
        print(f"{'final loss / floor':26s}{h['final_loss'] / floor:24.3f}{s['final_loss'] / floor:14.3f}")
        if ttf_h is not None and ttf_s is not None:
            print(f"time-to-floor speed-up: {ttf_h / ttf_s:.2f}x")
        print(f"sm.train timing: {json.dumps({k: round(v, 2) for k, v in s['timing'].items()})}")


if __name__ == "__main__":
    main()
