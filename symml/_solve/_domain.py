"""Why a solve stopped: a right-hand side that stops being finite just ahead of the solution.

A field that turns NaN or infinite (``sqrt`` or ``log`` of a negative number, a division by
zero) makes the step-size controller reject step after step until the step limit, which reads
like stiffness. When a concrete solve fails, `domain_hint` marches from the last sample the
solve reached with small explicit Euler steps up to the next save time and reports the first
point where the field is not finite; if there is none, the usual message stands.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._declare._symbols import state_name

#: Euler probes between the last reached sample and the next save time
PROBES = 200
#: a probe this many times beyond the largest reached magnitude is a blow-up, not a domain edge
BLOW_UP = 1e6


def domain_hint(model: Any, vf: Any, ts: Any, ys: Any, p: Any, codes: Any, ok: Any) -> str | None:
    """A sentence naming where the field of a failed solve stops being finite, or ``None``.

    Args:
        model: the Model (for state names).
        vf: its compiled vector field, ``vf(t, y, p)``.
        ts: the save times ``(n,)``; ``ys``: the solution ``batch + (n, states)``.
        p: the parameter vector(s), ``batch + (n_params,)`` or ``(n_params,)``.
        codes: diffrax result codes ``batch``; ``ok``: the codes of success.
    """
    ys, ts, p, codes = np.asarray(ys), np.asarray(ts, dtype=float), np.asarray(p), np.asarray(codes)
    batch = ys.shape[:-2]
    if batch:
        bad = np.argwhere(~np.isin(codes, ok))
        if bad.size == 0:
            return None
        member = tuple(int(i) for i in bad[0])
        y = ys[member]
        pp = p[member] if p.ndim > 1 else p
    else:
        y, pp = ys, p
    finite = np.all(np.isfinite(y), axis=-1)
    if not finite[0]:
        return None
    k = int(np.argmin(finite)) - 1 if not finite.all() else len(finite) - 1
    if k + 1 >= len(ts):
        return None
    t0, t1 = float(ts[k]), float(ts[k + 1])
    h = (t1 - t0) / PROBES
    scale = max(1.0, float(np.max(np.abs(y[: k + 1]))))
    z = np.array(y[k], dtype=float)
    tt = t0
    for _ in range(PROBES + 1):
        with np.errstate(all="ignore"):
            f = np.asarray(vf(tt, z, pp))
        if not np.all(np.isfinite(f)):
            if not np.all(np.abs(z) < BLOW_UP * scale):
                return None  # the solution grows without bound: the usual message says so
            where = ", ".join(f"{state_name(s)} = {v:.4g}" for s, v in zip(model.states, z))
            return (
                f"The right-hand side becomes NaN or infinite at t ≈ {tt:.4g} ({where}), just after "
                f"t = {t0:.4g}, the last sample the solve reached: the solution leaves the domain "
                "where the model is defined (a square root or logarithm of a negative number, a "
                "division by zero, an overflow). Check the equations, parameters and initial "
                "values, or stop the solve there with an Event."
            )
        z = z + h * f
        tt += h
    return None
