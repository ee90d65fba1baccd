"""Multiple shooting: the data layout of training rows and the start states of segments.

Every trajectory (or, with multiple shooting, every segment) is one row of a padded batch:
``ts (B, L)``, ``Y (B, L, K)``, weights ``W (B, L, K)`` (1 where observed, 0 for padding and
unobserved keys); padded times repeat the row's last time. All rows are solved together.

Multiple shooting cuts each trajectory of ``n`` samples into ``S`` segments at the sample
indices ``k_j = round(j (n - 1) / S)``; segment ``j`` runs from ``t[k_j]`` to ``t[k_(j+1)]``.
Segment 0 starts from the trajectory's initial values, segment ``j > 0`` from a learned node
(`node_values` initialises it from the data; hidden states from a first simulation).
Each sample is counted once (a segment's first sample belongs to the segment before it, where it
is a prediction rather than the learned start), and the loss adds
``continuity * mean((end of segment j - node j+1)^2)``, which vanishes once the segments join
into one trajectory: the shooting loss then equals the ordinary (single shooting) loss.

>>> import numpy as np, symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> u, v = lv.states
>>> ts = np.linspace(0, 6, 13)
>>> data = sm.Dataset(t=ts, y={u: 1 + np.sin(ts), v: 1 + np.cos(ts)})
>>> lay = layout(data.resolve(lv), list(lv.states), 4)
>>> [(a, b) for _, _, a, b in lay["rows"]], lay["n_nodes"]
([(0, 3), (3, 6), (6, 9), (9, 12)], 3)
"""

from __future__ import annotations

import numpy as np

from ..errors import MissingValueError


def layout(resolved, keys: list, shooting: int) -> dict:
    """The padded batch of rows (one per trajectory, or per segment with ``shooting > 1``)."""
    K = len(keys)
    rows = []  # (traj, start, end)
    n_traj = len(resolved)
    node_of = {}
    for i, (s, _) in enumerate(resolved):
        n = len(s)
        S = shooting
        if S > n - 1:
            raise ValueError(
                f"Shooting(segments={S}): {S} segments need at least {S + 1} samples per trajectory; "
                f"trajectory {i} has {n}. Use fewer segments."
            )
        bounds = [int(round(j * (n - 1) / S)) for j in range(S + 1)]
        for j in range(S):
            rows.append((i, j, bounds[j], bounds[j + 1]))
    # nodes: one per segment j >= 1
    n_nodes = 0
    for i, j, _, _ in rows:
        if j >= 1:
            node_of[(i, j)] = n_nodes
            n_nodes += 1
    L = max(b - a + 1 for _, _, a, b in rows)
    B = len(rows)
    ts = np.zeros((B, L))
    Y = np.zeros((B, L, K))
    W = np.zeros((B, L, K))
    t0 = np.zeros(B)
    t1 = np.zeros(B)
    y0_src = np.zeros(B, np.int32)
    next_src = np.zeros(B, np.int32)
    cmask = np.zeros(B)
    last = np.zeros(B, np.int32)
    traj = np.zeros(B, np.int32)
    node_time = np.zeros(n_nodes)
    node_traj = np.zeros(n_nodes, np.int32)
    node_sample = np.zeros(n_nodes, np.int32)
    for b, (i, j, a, e) in enumerate(rows):
        s, exprs = resolved[i]
        tt = np.asarray(s.t, float)
        m = e - a + 1
        ts[b, :m] = tt[a : e + 1]
        ts[b, m:] = tt[e]
        t0[b], t1[b], last[b], traj[b] = tt[a], tt[e], m - 1, i
        for e_, v in zip(exprs, s.values.values()):
            k = keys.index(e_)
            Y[b, :m, k] = np.asarray(v)[a : e + 1]
            W[b, :m, k] = 1.0
        if j >= 1:
            W[b, 0, :] = 0.0  # counted as the last sample of the segment before
            nd = node_of[(i, j)]
            y0_src[b] = n_traj + nd
            node_time[nd], node_traj[nd], node_sample[nd] = tt[a], i, a
        else:
            y0_src[b] = i
        if (i, j + 1) in node_of:
            next_src[b] = n_traj + node_of[(i, j + 1)]
            cmask[b] = 1.0
    return dict(
        ts=ts,
        Y=Y,
        W=W,
        t0=t0,
        t1=t1,
        y0_src=y0_src,
        next_src=next_src,
        cmask=cmask,
        last=last,
        traj=traj,
        n_nodes=n_nodes,
        node_traj=node_traj,
        node_sample=node_sample,
        rows=rows,
    )


def node_values(lay: dict, resolved, states: tuple, simulate_all) -> np.ndarray:
    """Start states of segments: observed states from the data at the segment's first sample,
    hidden ones from ``simulate_all()`` (one trajectory per data series, computed only if needed)."""
    n_nodes = lay["n_nodes"]
    out = np.full((n_nodes, len(states)), np.nan)
    for nd in range(n_nodes):
        i, a = int(lay["node_traj"][nd]), int(lay["node_sample"][nd])
        s, exprs = resolved[i]
        for e, v in zip(exprs, s.values.values()):
            if e in states:
                out[nd, states.index(e)] = float(np.asarray(v)[a])
    if np.isnan(out).any():
        sims = simulate_all()
        for nd in range(n_nodes):
            i, a = int(lay["node_traj"][nd]), int(lay["node_sample"][nd])
            miss = np.isnan(out[nd])
            out[nd, miss] = np.asarray(sims[i].y[a])[miss]
        if not np.all(np.isfinite(out)):
            raise MissingValueError(
                "The first simulation diverges before some shooting segments start, so their hidden "
                "states have no starting value. Use fewer segments or better initial values."
            )
    return out
