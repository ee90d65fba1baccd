"""``symml demo``: the whole chain on the Lotka–Volterra universal ODE (docs/problems.md §3).

1. **data**: u' = α u − β u v, v' = −γ v + δ u v (α, β, γ, δ = 1.3, 0.9, 0.8, 1.8) sampled on
   t ∈ [0, 5] every 0.25 with 5 % noise;
2. **train** the universal ODE u' = α u + U₀(u, v), v' = −γ v + U₁(u, v) (α, γ known, U a
   2 → 32 → 32 → 2 network) through the solver (Adam, then L-BFGS), from `STARTS` initial
   weights, the lowest loss kept;
3. **distill** U with SINDy (polynomials to degree 4, structures chosen through the solver on
   the data) or Operon;
4. **refit** the discovered constants through the solver;
5. **extrapolate** to t = 50, ten times the training window, against the truth and the
   un-distilled universal ODE.

`demo_chain` runs the chain and returns the numbers; `run_demo` (the command)
prints them and saves figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

TRUE = {"alpha": 1.3, "beta": 0.9, "gamma": 0.8, "delta": 1.8}
T_TRAIN, T_EXTRAPOLATE = 5.0, 50.0
#: training runs from different initial weights; the one with the lowest loss is distilled
STARTS = 3


@dataclasses.dataclass
class DemoResult:
    """What `demo_chain` produced. ``coefficients`` maps each network output to
    ``{term: (true coefficient, distilled, refitted)}``; ``extra`` / ``missing`` list terms
    found that are not in the truth and true terms not found."""

    truth: Any
    data: Any
    trained: Any
    distilled: Any
    refit: Any
    calls: tuple
    true_terms: dict
    coefficients: dict
    extra: dict
    missing: dict
    times: dict
    extrapolation_rmse: dict
    far: tuple  # (recovered, universal ODE) trajectories on t in [0, 50]

    @property
    def exact(self) -> bool:
        """True when exactly the true terms were recovered (none extra, none missing)."""
        return not any(self.extra.values()) and not any(self.missing.values())

    @property
    def max_error(self) -> float:
        """Largest relative error of a refitted coefficient (inf unless `exact`)."""
        if not self.exact:
            return float("inf")
        return max(abs(r - c) / abs(c) for terms in self.coefficients.values() for c, _, r in terms.values())


def _terms(expr: sp.Expr) -> dict:
    from ..distill.base import additive_coefficients

    return {k: float(v) for k, v in additive_coefficients(sp.expand(expr)).items()}


def demo_chain(
    backend: str = "sindy", seed: int = 0, quick: bool = False, verbose: bool = True
) -> DemoResult:
    """Run the chain once; see the module docs. ``quick`` trains briefly (for CI)."""
    import symml as sm

    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        times[name] = now - clock
        clock = now

    lv = sm.zoo.lotka_volterra()
    u, v = lv.states
    alpha, beta, delta, gamma = lv.params
    ts = np.linspace(0.0, T_TRAIN, 21)
    data = sm.Dataset.from_model(lv, ts=ts, noise=0.05, seed=seed)
    lap("data")

    U = sm.neural("U", inputs=[u, v], outputs=2, width=32, depth=2)
    ude = sm.Model(
        [sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
        defaults={alpha: TRUE["alpha"], gamma: TRUE["gamma"]},
        name="lotka_volterra_ude",
    )
    phases = dict(optimizer=sm.Adam(steps=100), polish=sm.LBFGS(steps=300)) if quick else {}
    # Several starts, the lowest loss kept: a single run ends in a poor minimum now and then
    # (measured: seed 2 of 0-4 at 5 % noise, on data changed by 1e-15, ended at loss
    # 0.0012-0.0018 where other starts reach 0.0005-0.0008, and its network distilled to
    # spurious u^2 v^2 terms). With 3 starts seeds 0-4 all recover the two interaction terms.
    runs = [
        sm.train(ude, data, **phases, seed=STARTS * seed + k, verbose=verbose and k == 0)
        for k in range(STARTS)
    ]
    trained = min(runs, key=lambda run: float(run.loss))
    lap("train")

    options = {"max_time": 20.0 if quick else 60.0, "random_state": seed} if backend == "operon" else {}
    found = sm.distill(trained, backend=backend, progress=verbose, **options)
    lap("distill")

    # The known physics (α, γ) stays as declared: on 21 noisy points, refitting it together
    # with the new constants inflates every standard error several-fold.
    refit = found.refit(params=list(found.constants), weights="relative")
    lap("refit")

    calls = tuple(U)
    true_terms = {U[0]: -TRUE["beta"] * u * v, U[1]: TRUE["delta"] * u * v}
    values = {p: sp.Float(float(refit.params.get(p, val))) for p, val in found.constants.items()}
    coefficients, extra, missing = {}, {}, {}
    for call in calls:
        want = _terms(true_terms[call])
        got = _terms(found.terms[call])
        after = _terms(found.parametrized[call].xreplace(values))
        coefficients[call] = {k: (c, got.get(k, 0.0), after.get(k, 0.0)) for k, c in want.items()}
        extra[call] = [k for k in got if k not in want]
        missing[call] = [k for k in want if k not in got]

    t_far = np.linspace(0.0, T_EXTRAPOLATE, 1001)
    truth = sm.simulate(lv, saveat=jnp.asarray(t_far))
    late = t_far > T_TRAIN
    try:
        recovered = sm.simulate(refit.model, saveat=jnp.asarray(t_far))
    except sm.SolveError:
        # a distilled model can blow up beyond the data (Operon's rough terms): it is shown on
        # the training window and scores an infinite extrapolation error
        recovered = sm.simulate(refit.model, saveat=jnp.asarray(t_far[~late]))
    ude_far = trained.predict(ts=t_far, max_steps=1 << 18)
    rmse = {}
    for name, traj in (("recovered", recovered), ("ude", ude_far)):
        if len(traj.t) < t_far.size:
            rmse[name] = float("inf")
            continue
        err = np.asarray(traj.y)[late][:, :2] - np.asarray(truth.y)[late][:, :2]
        rmse[name] = float(np.sqrt(np.nanmean(err**2))) if np.all(np.isfinite(err)) else float("inf")
    lap("extrapolate")
    return DemoResult(
        truth=truth,
        data=data,
        trained=trained,
        distilled=found,
        refit=refit,
        calls=calls,
        true_terms=true_terms,
        coefficients=coefficients,
        extra=extra,
        missing=missing,
        times=times,
        extrapolation_rmse=rmse,
        far=(recovered, ude_far),
    )


def _rmse(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else f"inf (blows up before t = {T_EXTRAPOLATE:g})"


def run_demo(backend: str = "sindy", seed: int = 0, out: str = "symml-demo", quick: bool = False) -> int:
    """The ``symml demo`` command: run the chain, print the comparison, save figures."""
    from ..distill.base import round_floats

    print(f"symml demo: Lotka–Volterra universal ODE (docs/problems.md §3), backend {backend}, seed {seed}")
    print("  data: t in [0, 5] every 0.25 (21 points), 5 % noise; known: alpha u, -gamma v")
    r = demo_chain(backend=backend, seed=seed, quick=quick, verbose=True)
    print()
    print(r.distilled.report())
    print()
    print("Recovered equations (after refit) next to the truth:")
    truth = r.truth.model.numeric_rhs()
    for state, rhs in r.refit.model.numeric_rhs().items():
        if state in truth:
            print(f"  {'d' + str(state.func) + '/dt':>9} = {round_floats(rhs, 4)}")
            print(f"  {'truth':>9} = {round_floats(truth[state], 4)}")
    print()
    print(f"{'term':<22}{'true':>9}{'distilled':>11}{'refitted':>10}{'error':>8}")
    for call, terms in r.coefficients.items():
        for term, (c, d, f) in terms.items():
            print(
                f"{str(call.func) + ': ' + str(term):<22}{c:>9.4f}{d:>11.4f}{f:>10.4f}"
                f"{abs(f - c) / abs(c):>8.2%}"
            )
        for term in r.extra[call]:
            print(f"{str(call.func) + ': ' + str(term):<22}{'(none)':>9}   extra term")
        for term in r.missing[call]:
            print(f"{str(call.func) + ': ' + str(term):<22}   missing")
    verdict = "exactly the two interaction terms" if r.exact else "NOT the exact structure"
    print(f"\nRecovered {verdict}; largest coefficient error after refit {r.max_error:.2%}.")
    print(
        f"Extrapolation to t = {T_EXTRAPOLATE:g} (RMSE on t > {T_TRAIN:g} against the truth): "
        f"recovered model {_rmse(r.extrapolation_rmse['recovered'])}, "
        f"universal ODE {_rmse(r.extrapolation_rmse['ude'])}"
    )
    print("Wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.times.items()))
    os.makedirs(out, exist_ok=True)
    paths = _figures(r, out)
    import symml as sm

    sm.save(r.refit.model, os.path.join(out, "recovered_model.json"))
    summary = {
        "backend": backend,
        "seed": seed,
        "quick": quick,
        "exact_structure": r.exact,
        "max_coefficient_error": r.max_error,
        "coefficients": {
            str(call.func): {
                str(k): {"true": c, "distilled": d, "refitted": f} for k, (c, d, f) in terms.items()
            }
            for call, terms in r.coefficients.items()
        },
        "extra_terms": {str(c.func): [str(k) for k in v] for c, v in r.extra.items()},
        "extrapolation_rmse": r.extrapolation_rmse,
        "seconds": r.times,
    }
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    print(f"Figures: {', '.join(paths)}; model and numbers: recovered_model.json, results.json in {out}/")
    return 0


def _figures(r: DemoResult, out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u, v = r.truth.model.states[:2]
    names = []
    dense = np.linspace(0.0, T_TRAIN, 300)
    fit = r.trained.predict(ts=dense)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, s in enumerate((u, v)):
        ax.plot(r.data.series[0].t, r.data[s], "o", color=f"C{k}", ms=4, label=f"{s.func} data")
        ax.plot(dense, fit[s], "-", color=f"C{k}", label=f"{s.func} universal ODE")
    truth = r.truth
    sel = np.asarray(truth.t) <= T_TRAIN
    for k, s in enumerate((u, v)):
        ax.plot(
            np.asarray(truth.t)[sel], np.asarray(truth[s])[sel], "k:", lw=1, label="truth" if k == 0 else None
        )
    ax.set_xlabel("t")
    ax.set_title("data and the trained universal ODE")
    ax.legend()
    names.append(_save(fig, out, "data_and_fit.png"))

    X, Y = r.trained.network_data(points=300)
    along = np.linspace(0.0, T_TRAIN, X.shape[0])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    inputs = {u: X[:, 0], v: X[:, 1]}
    for k, call in enumerate(r.calls):
        axes[k].plot(along, Y[:, k], label="network")
        axes[k].plot(
            along, _eval(r.true_terms[call], inputs), "k--", lw=1, label=f"truth {r.true_terms[call]}"
        )
        axes[k].plot(along, _eval(r.distilled.terms[call], inputs), ":", lw=2, label="distilled")
        axes[k].set_title(str(call))
        axes[k].set_xlabel("t along the fitted trajectory")
        axes[k].legend(fontsize=8)
    names.append(_save(fig, out, "learned_terms.png"))

    recovered, ude = r.far
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for k, s in enumerate((u, v)):
        axes[k].plot(truth.t, truth[s], "k-", lw=1.5, label="truth")
        axes[k].plot(recovered.t, recovered[s], "--", color="C1", label="recovered (distilled + refit)")
        axes[k].plot(ude.t, ude[s], ":", color="C2", label="universal ODE (network)")
        axes[k].axvspan(0, T_TRAIN, color="0.9", label="training window" if k == 0 else None)
        axes[k].set_ylabel(str(s.func))
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].set_xlabel("t")
    fig.suptitle(f"extrapolation to t = {T_EXTRAPOLATE:g}")
    names.append(_save(fig, out, "extrapolation.png"))
    return names


def _eval(expr: sp.Expr, inputs: dict) -> np.ndarray:
    from ..distill.library import evaluate

    keys = list(inputs)
    X = np.stack([inputs[k] for k in keys], axis=-1)
    return evaluate([expr], keys, X, check=False)[:, 0]


def _save(fig, out: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return name
