"""`sm.discover`'s structure selection: identifiability checks, candidates, the solver's choice.

`choose_through_solver` replaces the backend's pick of every equation by the combination the
solver prefers (`symml._discover._select`) among the best supports of every size
(`symml._discover._candidates`), after dropping library columns the data cannot tell apart
(column-pivoted QR: a conserved quantity such as S + E + I + R = 1 makes ``1``, ``S``, ...
linearly dependent on every sample). What it noticed goes into the Discovery's notes and,
where the model is doubtful, into a `DiscoveryWarning`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._declare._symbols import t
from ..distill.base import Candidate, Expression, r2_score
from ._batch import SolverSelection, noise_level
from ._candidates import best_supports
from ._errors import DiscoveryError, DiscoveryWarning
from ._select import CHAOTIC, REFIT, common_count, followed, select

#: a column whose pivoted-QR diagonal is below this fraction of the largest is dependent
RANK_TOL = 1e-7
#: below this R² of the integrated model against its own data, warn
POOR_R2 = 0.5
#: the criterion (nats) by which the whole library must beat the polynomial one
LIBRARY_MARGIN = 4.0
#: combinations refitted through the solver when a chaotic record is scored on windows
WINDOWED_REFIT = 2
#: at or below this R², the data look like noise (no model better than a constant)
NOISE_R2 = 0.1


def dependent_columns(Theta: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """Columns of ``Theta`` that are (numerically) linear combinations of earlier ones: a
    column is kept when it raises the rank of the kept unit-RMS columns (smallest singular
    value above ``tol`` times the largest), so the library's simpler terms come first.

    >>> x = np.linspace(0, 1, 20)
    >>> dependent_columns(np.column_stack([np.ones(20), x, 1 - x, x**2]))
    [2]
    """
    scale = np.sqrt(np.mean(Theta**2, axis=0))
    kept: list[int] = []
    dropped: list[int] = []
    for j in range(Theta.shape[1]):
        if scale[j] <= 1e-300:
            dropped.append(j)
            continue
        trial = kept + [j]
        s = np.linalg.svd(Theta[:, trial] / scale[trial], compute_uv=False)
        (kept if s[-1] > tol * s[0] else dropped).append(j)
    return dropped


def conserved_combination(data, cols, bases) -> np.ndarray | None:
    """Coefficients ``a`` (unit norm, on standardised states) of a linear combination
    ``a·x`` that stays constant within the noise on every trajectory, or ``None``."""
    if len(bases) < 2:
        return None
    rows, noise = [], []
    for series in data.series:
        X = np.column_stack([np.asarray(series[cols[b]], dtype=float) for b in bases])
        ts = np.asarray(series.t, dtype=float)
        rows.append(X - X.mean(axis=0))
        noise.append([noise_level(ts, X[:, i]) for i in range(X.shape[1])])
    X = np.vstack(rows)
    if not np.all(np.isfinite(X)):
        return None
    sd = X.std(axis=0)
    if np.any(sd <= 0):
        return None
    Z = X / sd
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    spread = s[-1] / math.sqrt(Z.shape[0])
    rel_noise = float(np.mean(np.mean(noise, axis=0) / sd))
    return Vt[-1] if spread < max(3.0 * rel_noise, 1e-6) else None


def choose_through_solver(data, bases, orders, cols, inputs, terms, Theta, Y, results, notes):
    """``(results, validation)``: each equation's Expression chosen through the solver."""
    terms = list(terms)
    tol = RANK_TOL
    conserved = conserved_combination(data, cols, bases)
    if conserved is not None:
        combo = " + ".join(f"{a:.3g}*{b}" for a, b in zip(conserved, bases) if abs(a) > 1e-3)
        notes.append(
            f"the states satisfy a conservation law ({combo} ≈ const on standardised states): "
            "library terms that differ only by it cannot be told apart"
        )
        tol = max(tol, 1e-3)
    dropped = dependent_columns(Theta, tol)
    if dropped:
        names = ", ".join(str(terms[j]) for j in dropped)
        notes.append(
            f"dropped {len(dropped)} library term(s) that are linear combinations of the others on "
            f"this data: {names}"
        )
    # Terms beside the polynomials (sines, saturating rational terms) are often nearly
    # polynomial on a short range; dropping those is routine and only noted. A conservation
    # law, or polynomials that cannot be told apart, are worth a warning.
    if conserved is not None or any(sp.sympify(terms[j]).is_polynomial(*inputs) for j in dropped):
        warnings.warn(
            "sm.discover: the library is rank deficient on this data (" + "; ".join(notes) + ").",
            DiscoveryWarning,
            stacklevel=4,
        )
    keep = [j for j in range(len(terms)) if j not in set(dropped)]
    F = Theta[:, keep]
    lhs_of = [b.diff(t, orders[b]) for b in bases]
    kept_terms = [terms[j] for j in keep]
    families = library_families(kept_terms, inputs)
    selection = SolverSelection(data, bases, orders, cols, inputs, kept_terms)

    index = {term: k for k, term in enumerate(kept_terms)}
    chosen = {
        lhs: tuple(sorted(index[term] for term in results[lhs].coefficients if term in index))
        for lhs in lhs_of
    }

    def supports(allowed):
        return [
            best_supports(
                F,
                Y[b],
                float(results[lhs].info.get("n_effective", Theta.shape[0])),
                extra=(chosen[lhs],),
                allowed=allowed,
            )
            for b, lhs in zip(bases, lhs_of)
        ]

    # the polynomial library first; each other family of terms (trigonometric, rational, the
    # user's own) beside the polynomials only where it clearly wins: sin x beside x - x³/6
    # otherwise buys a little trajectory fit by compensating noise
    first = next(iter(families))
    found = {first: supports(families[first])}
    selection = followed(selection, found[first])
    if selection.window is not None:
        # a chaotic record, scored on windows: the other families only where the regression
        # itself chose their terms (windows price terms less sharply than whole trajectories)
        picked = {k for ks in chosen.values() for k in ks}
        families = {
            name: allowed
            for name, allowed in families.items()
            if name == first or allowed is None or picked & (set(allowed) - set(families[first] or ()))
        }
        notes.append(
            f"the record is chaotic (the regression's model amplifies a small change of its initial "
            f"values more than {CHAOTIC:g}-fold): candidates were scored on windows of "
            f"{selection.window} samples"
        )
    refits = REFIT if selection.window is None else WINDOWED_REFIT
    found.update({name: supports(allowed) for name, allowed in families.items() if name != first})
    found = {name: (*select(selection, cands, refits), cands) for name, cands in found.items()}
    tried = sum(len(f[1]) for f in found.values())
    winners = {name: f[0] for name, f in found.items() if f[0].ok}
    n_eff = common_count(list(winners.values()))
    if n_eff is not None:
        winners = {name: w.rescored(n_eff) for name, w in winners.items()}
    library_choice = next(iter(found))
    if winners:
        base = winners.get(library_choice)
        rivals = {name: w for name, w in winners.items() if name != library_choice}
        if rivals:
            name, rival = min(rivals.items(), key=lambda item: item[1].criterion)
            if base is None or rival.criterion < base.criterion - LIBRARY_MARGIN:
                library_choice = name
    best, done, candidates = found[library_choice]
    best = winners.get(library_choice, best)
    if not best.ok:
        raise DiscoveryError(
            f"None of the {tried} candidate models tried integrates from the data's initial "
            f"values (every one blew up or hit the step limit of {selection.options.max_steps}). "
            "Check the data (units, outliers), give a smaller library, or pass select='backend' "
            "to get the regression's choice unvalidated."
        )
    out = {}
    for i, (b, lhs) in enumerate(zip(bases, lhs_of)):
        c = candidates[i][best.choice[i]]
        # refitted coefficients only where every integrated state is observed: with an
        # estimated initial velocity, the refit bends the coefficients to absorb its error
        refitted = best.coefs is not None and all(z in cols for z in inputs)
        coef = best.coefs[i] if refitted and best.coefs is not None else c.coef
        expr = sp.Add(*[sp.Float(float(coef[j])) * terms[keep[j]] for j in c.support])
        y = Y[b]
        n = y.size
        front = tuple(
            Candidate(
                sp.Add(*[sp.Float(float(o.coef[j])) * terms[keep[j]] for j in o.support]),
                len(o.support),
                o.rss / n,
                len(o.support),
                min(
                    (s.criterion for s in done.values() if s.choice[i] == k),
                    default=math.inf,
                ),
                {"terms": [str(terms[keep[j]]) for j in o.support], "t_min": o.t_min},
            )
            for k, o in enumerate(candidates[i])
        )
        out[lhs] = Expression(
            expr=expr,
            inputs=tuple(inputs),
            backend=results[lhs].backend,
            mse=c.rss / n,
            r2=r2_score(y, c.rss),
            complexity=len(c.support),
            n_samples=n,
            n_params=len(c.support),
            coefficients={terms[keep[j]]: sp.Float(float(coef[j])) for j in c.support},
            front=front,
            selection="solver-bic",
            info={
                "library": [str(term) for term in terms],
                "dropped": [str(terms[j]) for j in dropped],
                "n_effective": float(results[lhs].info.get("n_effective", n)),
                "t_min": c.t_min,
                "backend_choice": str(results[lhs].expr),
                "refitted_through_solver": refitted,
            },
        )
        if not c.support:
            notes.append(f"the equation for {lhs} came back empty ({lhs} = 0)")
            warnings.warn(
                f"sm.discover: the equation for {lhs} came back empty: no library term is supported "
                "by the data.",
                DiscoveryWarning,
                stacklevel=4,
            )
    warn_on_fit(best.traj_r2, notes, best_regression_r2(out))
    validation: dict[str, Any] = {
        "r2": tuple(float(v) for v in best.per_trajectory_r2),
        "criterion": float(best.criterion),
        "combinations": tried,
        "integrated": sum(1 for s in done.values() if s.ok),
        "library": library_choice,
        "window": selection.window,
    }
    return out, validation


def library_families(terms: Sequence[sp.Expr], inputs: Sequence[sp.Expr]) -> dict[str, list[int] | None]:
    """``{family: allowed column indices}``: the polynomial terms, then the polynomials
    together with each other kind of term in the library (trigonometric, rational, other),
    in that order; ``{"all": None}`` when the library has no polynomial term.

    >>> x = sp.Symbol("x")
    >>> library_families([sp.S.One, x, sp.sin(x), 1 / (1 + x)], [x])
    {'polynomial': [0, 1], 'trigonometric': [0, 1, 2], 'rational': [0, 1, 3]}
    """
    kinds: dict[str, list[int]] = {"polynomial": [], "trigonometric": [], "rational": [], "other": []}
    for k, term in enumerate(terms):
        term = sp.sympify(term)
        if term.is_polynomial(*inputs):
            kinds["polynomial"].append(k)
        elif term.atoms(sp.sin, sp.cos) and not term.atoms(sp.Function) - term.atoms(sp.sin, sp.cos) - set(
            inputs
        ):
            kinds["trigonometric"].append(k)
        elif term.is_rational_function(*inputs):
            kinds["rational"].append(k)
        else:
            kinds["other"].append(k)
    if not kinds["polynomial"]:
        return {"all": None}
    out: dict[str, list[int] | None] = {"polynomial": kinds["polynomial"]}
    for name in ("trigonometric", "rational", "other"):
        if kinds[name]:
            out[name] = sorted(kinds["polynomial"] + kinds[name])
    return out


def best_regression_r2(results: dict) -> float:
    """The best finite R² of the chosen equations on the estimated derivatives (NaN: none)."""
    return max((float(r.r2) for r in results.values() if math.isfinite(float(r.r2))), default=math.nan)


def warn_on_fit(r2: float, notes: list[str], regression_r2: float = math.nan) -> None:
    """Note and warn when the chosen model, integrated, reproduces its data poorly (worst
    trajectory R² ``r2``) or no better than a constant; the data look like noise only when the
    regression on the estimated derivatives (best R² ``regression_r2``, NaN: unknown) explains
    them no better either, otherwise the library lacks what the dynamics need."""
    if r2 <= NOISE_R2 and not regression_r2 > NOISE_R2:
        notes.append(f"no model reproduces the data better than a constant (R2 = {r2:.3g}): pure noise?")
        warnings.warn(
            f"sm.discover: the data look like noise: the best model integrated against them reaches "
            f"R2 = {r2:.3g}, no better than a constant.",
            DiscoveryWarning,
            stacklevel=5,
        )
    elif r2 <= NOISE_R2:
        notes.append(
            f"the model does not reproduce its data (worst trajectory R2 = {r2:.3g}) although the "
            f"regression explains the estimated derivatives (R2 = {regression_r2:.3g})"
        )
        warnings.warn(
            f"sm.discover: the discovered model does not reproduce its data: integrated from the "
            f"data's initial values its worst trajectory has R2 = {r2:.3g}, although the regression "
            f"explains the estimated derivatives (R2 = {regression_r2:.3g}). The library may lack "
            "terms the dynamics need (try library='trig' or 'rational', a higher degree, or the "
            "default library).",
            DiscoveryWarning,
            stacklevel=5,
        )
    elif r2 < POOR_R2:
        notes.append(f"the model reproduces its own data poorly (worst trajectory R2 = {r2:.3g})")
        warnings.warn(
            f"sm.discover: the discovered model reproduces its own data poorly: integrated from the "
            f"data's initial values its worst trajectory has R2 = {r2:.3g}.",
            DiscoveryWarning,
            stacklevel=5,
        )
