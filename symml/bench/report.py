"""``results.json`` and ``report.md`` (with figures) from ``results.csv``.

The report covers every row of ``results.csv`` (earlier, resumed runs included):

* a table of the fraction of runs with R² > 0.9 per problem and method, for the training
  window, the extrapolation window and the new initial condition;
* a table of medians (extrapolation R², term precision/recall, coefficient error, fitted
  parameters, wall time) and failure counts;
* per problem, a figure of the truth and of each method's prediction over the training and
  extrapolation windows (largest noise level, smallest seed), with the noisy data;
* a summary figure of the extrapolation RMSE against the noise level for each method;
* for the symbolic methods, the recovery rate (runs that found exactly the true terms) and
  the coefficient errors of those runs per noise level, with a figure of rate against noise;
* the recovered equations.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np

from .results import COLUMNS, versions

__all__ = ["write_outputs", "load_results", "r2_table", "recovery_table", "THRESHOLD"]

#: R² above which a run counts as a success in the report's table.
THRESHOLD = 0.9


def load_results(out: str | Path):
    """``results.csv`` of ``out`` as a DataFrame with numeric and boolean columns typed."""
    import pandas as pd

    df = pd.read_csv(Path(out) / "results.csv", keep_default_na=False, na_values=["nan", "NaN", ""])
    for c in df.columns:
        if c.startswith("failed") or c == "failed":
            df[c] = df[c].astype(str).str.lower().eq("true")
    for c in ("equations", "note", "error"):
        if c in df.columns:
            df[c] = df[c].fillna("").astype(str)
    return df


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "-inf" if v < 0 else "inf"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def r2_table(df) -> str:
    """Markdown table: fraction of runs with R² > 0.9 (train / extrapolation / new IC)."""
    methods = list(dict.fromkeys(df["method"]))
    rows = []
    for prob in dict.fromkeys(df["problem"]):
        cells = [prob]
        for m in methods:
            sub = df[(df["problem"] == prob) & (df["method"] == m)]
            if sub.empty:
                cells.append("–")
                continue
            fr = [
                float(np.mean(sub[f"r2_{w}"].astype(float) > THRESHOLD))
                for w in ("train", "extrap", "new_ic")
            ]
            cells.append(" / ".join(f"{f:.2f}" for f in fr))
        rows.append(cells)
    return _md_table(["problem", *methods], rows)


def _median_table(df) -> str:
    rows = []
    for (prob, m), sub in df.groupby(["problem", "method"], sort=False):
        rows.append(
            [
                prob,
                m,
                f"{len(sub)}",
                f"{int(sub['failed'].sum())}",
                _fmt(float(np.median(sub["r2_train"]))),
                _fmt(float(np.median(sub["r2_extrap"]))),
                _fmt(float(np.median(sub["r2_new_ic"]))),
                _fmt(float(sub["precision"].median())),
                _fmt(float(sub["recall"].median())),
                _fmt(float(sub["coef_error"].median())),
                _fmt(float(sub["n_params"].median())),
                _fmt(float(sub["time_total"].median()), 2),
            ]
        )
    header = ["problem", "method", "runs", "failed", "R² train", "R² extrap", "R² new IC", "precision",
              "recall", "coef. error", "params", "time [s]"]  # fmt: skip
    return _md_table(header, rows)


def _pick(df, prob: str):
    sub = df[df["problem"] == prob]
    level = sub["noise"].max()
    seed = sub[sub["noise"] == level]["seed"].min()
    return level, seed


def problem_figure(out: Path, df, prob: str) -> str | None:
    """Truth and each method's prediction for ``prob``; returns the file name (or None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level, seed = _pick(df, prob)
    loaded = {}
    for m in dict.fromkeys(df["method"]):
        f = out / "predictions" / f"{prob}__{m}__{level:g}__{seed}.npz"
        if f.exists():
            loaded[m] = dict(np.load(f))
    if not loaded:
        return None
    first = next(iter(loaded.values()))
    names = [str(s) for s in first["observe"]]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names) + 0.6), sharex=True, squeeze=False)
    t = first["t_main"]
    for i, (ax, name) in enumerate(zip(axes[:, 0], names)):
        ax.plot(t, first["truth_main"][:, i], color="k", lw=2.5, alpha=0.35, label="truth")
        ax.plot(first["data_t"], first["data_y"][:, i], ".", color="k", ms=3, label=f"data (noise {level:g})")
        for m, d in loaded.items():
            if "pred_main" in d:
                ax.plot(t, d["pred_main"][:, i], lw=1.2, label=m)
        ax.axvline(float(first["t_split"]), color="grey", ls="--", lw=1)
        lo, hi = np.min(first["truth_main"][:, i]), np.max(first["truth_main"][:, i])
        pad = 0.5 * (hi - lo) + 1e-9
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(name)
    axes[0, 0].set_title(f"{prob}: training window | extrapolation (seed {seed})")
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("t")
    fig.tight_layout()
    name = f"fig_{prob}.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def noise_figure(out: Path, df) -> str:
    """Median extrapolation RMSE against noise, one panel per problem, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = list(dict.fromkeys(df["problem"]))
    fig, axes = plt.subplots(1, len(probs), figsize=(4 * len(probs), 3.2), squeeze=False)
    for ax, prob in zip(axes[0], probs):
        sub = df[df["problem"] == prob]
        for m in dict.fromkeys(sub["method"]):
            g = sub[sub["method"] == m].groupby("noise")["rmse_extrap"].median()
            ok = np.isfinite(g.values)
            ax.plot(g.index[ok], g.values[ok], "o-", label=m)
            if (~ok).any():
                ax.plot(g.index[~ok], np.full((~ok).sum(), np.nan), "x")
        ax.set_yscale("log")
        ax.set_title(prob)
        ax.set_xlabel("noise (relative)")
    axes[0, 0].set_ylabel("extrapolation RMSE (median)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    name = "extrapolation_vs_noise.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _symbolic(df):
    return df[df["exact"].astype(float).notna()] if "exact" in df.columns else df.iloc[:0]


def recovery_table(df) -> str:
    """Markdown table per problem, method and noise: exact recoveries and their coefficient errors.

    A run recovers the structure when its term sets equal the truth's (``exact``: nothing
    missing, nothing extra); the errors are the mean relative coefficient errors of those runs.
    """
    sym = _symbolic(df)
    rows = []
    for (prob, m, level), sub in sym.groupby(["problem", "method", "noise"], sort=True):
        hit = sub[sub["exact"].astype(float) == 1.0]
        err = hit["coef_error"].astype(float)
        rows.append(
            [
                str(prob),
                str(m),
                f"{float(level):g}",
                f"{len(hit)}/{len(sub)}",
                f"{len(hit) / len(sub):.2f}",
                _fmt(float(err.median())) if len(hit) else "–",
                _fmt(float(err.max())) if len(hit) else "–",
            ]
        )
    header = ["problem", "method", "noise", "exact", "rate", "coef. error (median)", "coef. error (max)"]
    return _md_table(header, rows)


def recovery_figure(out: Path, df) -> str | None:
    """Recovery rate (exact structure) against noise, one panel per problem; the file name or None."""
    sym = _symbolic(df)
    if sym.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = list(dict.fromkeys(sym["problem"]))
    fig, axes = plt.subplots(1, len(probs), figsize=(4 * len(probs), 3.2), squeeze=False)
    for ax, prob in zip(axes[0], probs):
        sub = sym[sym["problem"] == prob]
        for m in dict.fromkeys(sub["method"]):
            g = sub[sub["method"] == m].groupby("noise")["exact"].apply(lambda e: float(np.mean(e == 1.0)))
            ax.plot(g.index, g.values, "o-", label=m)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(prob)
        ax.set_xlabel("noise (relative)")
    axes[0, 0].set_ylabel("recovery rate (exact terms)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    name = "recovery_vs_noise.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _json_value(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_outputs(out: str | Path, report: bool = True):
    """Write ``results.json`` (and ``report.md`` with figures) from ``out/results.csv``."""

    out = Path(out)
    df = load_results(out)
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    payload = {
        "created": stamp,
        "versions": versions(),
        "columns": list(COLUMNS),
        "rows": [{k: _json_value(v) for k, v in r.items()} for r in df.to_dict(orient="records")],
    }
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    if report and not df.empty:
        write_report(out, df, payload["versions"], stamp)
    return df


def write_report(out: Path, df, vers: dict, stamp: str) -> None:
    """``report.md`` with the tables, figures and recovered equations."""
    figs = [f for f in (problem_figure(out, df, p) for p in dict.fromkeys(df["problem"])) if f]
    summary = noise_figure(out, df)
    lines = [
        "# symml bench: symbolic vs neural fits",
        "",
        f"Generated {stamp}; {len(df)} runs (problems × methods × noise levels × seeds).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "",
        "R² and RMSE compare the recovered model, integrated from the true initial values, with the "
        "noise-free truth on the training window, on the later extrapolation window and from a second "
        "initial condition. Failed integrations count as failures (R² = -inf).",
        "",
        f"## Fraction of runs with R² > {THRESHOLD} (train / extrapolation / new IC)",
        "",
        r2_table(df),
        "",
        "## Medians per problem and method",
        "",
        _median_table(df),
        "",
        "Precision and recall compare the sets of terms of the expanded right-hand sides with the truth "
        "(ignoring coefficients); the coefficient error is the mean relative error of the matched terms.",
        "",
        "## Extrapolation error against noise",
        "",
        f"![extrapolation error vs noise]({summary})",
        "",
    ]
    recovery = recovery_figure(out, df)
    if recovery:
        lines += [
            "## Recovery of the true terms",
            "",
            "A run recovers the structure when its terms are exactly the truth's (none missing, none "
            "extra); the coefficient errors are those of the recovering runs.",
            "",
            recovery_table(df),
            "",
            f"![recovery rate vs noise]({recovery})",
            "",
        ]
    lines += [
        "## Truth against each method",
        "",
    ]
    lines += [f"![{f}]({f})\n" for f in figs]
    lines += ["## Recovered equations (largest noise level, smallest seed)", ""]
    for prob in dict.fromkeys(df["problem"]):
        level, seed = _pick(df, prob)
        sub = df[(df["problem"] == prob) & (df["noise"] == level) & (df["seed"] == seed)]
        for _, r in sub.iterrows():
            text = r["equations"] or ("(network)" if not r["error"] else f"(error: {r['error']})")
            lines.append(f"- **{prob} / {r['method']}** (noise {level:g}): {text}")
    (out / "report.md").write_text("\n".join(lines) + "\n")
