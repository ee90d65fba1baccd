"""The PINN optimisation: Adam with adaptive loss weights and resampled collocation, then L-BFGS.

Loss weights are never set by hand. Every ``every`` Adam steps the gradient of each term is
taken separately and the weights are moved (moving average, ``alpha = 0.9``) towards a published
rule:

* ``"annealing"``: learning-rate annealing (Wang, Teng and Perdikaris, SIAM J. Sci. Comput.
  2021, Algorithm 1): ``lambda_i = max |grad L_res| / mean |grad L_i|``, the residual weight
  staying 1;
* ``"grad_norm"``: the gradient-norm rule of Wang et al. ("An expert's guide to training
  PINNs", 2023): ``lambda_i = sum_j ||grad L_j|| / ||grad L_i||``, so that every term pulls
  the weights equally hard.

The per-term gradients cost one extra reverse pass per term, only on update steps (a
``lax.cond``). The L-BFGS polish then minimises the last weighted loss on a fixed, denser set
of collocation points without causal weights (a fixed objective, as its line search needs).

The host loop dispatches chunks of ``CHUNK`` steps (one ``lax.scan`` each), records the history,
updates the progress bar and writes checkpoints.
"""

from __future__ import annotations

import json
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from .. import _serialize as _io
from .._train._optimizers import lbfgs_init, lbfgs_result, lbfgs_step, learning_rate
from ..errors import DataError
from ._problem import Problem

__all__ = ["BALANCING", "collocation", "optimise", "runners", "CHUNK"]

#: Loss-balancing rules by name (``None`` keeps every weight at 1).
BALANCING = ("annealing", "grad_norm")
#: Steps per dispatched chunk.
CHUNK = 100
_ALPHA = 0.9


def collocation(key: jax.Array, t_span: Any, chunks: int, per: int, random: bool) -> jax.Array:
    """Stratified collocation times, shape ``(chunks, per)``: ``per`` points in each of ``chunks``
    equal windows of ``t_span``, uniform at random (``random``) or evenly at the cell midpoints."""
    t0, t1 = t_span
    n = chunks * per
    cell = (jnp.arange(n) + (jax.random.uniform(key, (n,)) if random else 0.5)) / n
    return (t0 + (t1 - t0) * cell).reshape(chunks, per)


def _flat(tree: Any) -> jax.Array:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def _new_weights(rule: str, jac: Any, lam: jax.Array) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(jac)
    g = jnp.concatenate([jnp.reshape(x, (x.shape[0], -1)) for x in leaves], axis=1)
    tiny = jnp.finfo(g.dtype).tiny
    if rule == "annealing":
        target = jnp.max(jnp.abs(g[0])) / jnp.maximum(jnp.mean(jnp.abs(g), axis=1), tiny)
        target = target.at[0].set(1.0)
    else:
        norms = jnp.linalg.norm(g, axis=1)
        target = jnp.sum(norms) / jnp.maximum(norms, tiny)
    target = jnp.where(jnp.isfinite(target), target, lam)
    return _ALPHA * lam + (1 - _ALPHA) * target


def _adam_chunk(opt: optax.GradientTransformation, cfg: dict):
    rule, every = cfg["balance"], cfg["every"]

    def step(problem, static, carry, inp):
        arrays, state, lam, eps = carry
        key, i, live = inp
        theta = eqx.combine(arrays, static)
        tc = collocation(key, problem.t_span, cfg["chunks"], cfg["per"], cfg["resample"])

        def terms(a):
            return problem.terms(eqx.combine(a, static), tc, eps)

        def balanced(_):
            def with_aux(a):
                L, w = terms(a)
                return L, (L, w)

            jac, (L, w) = jax.jacrev(with_aux, has_aux=True)(arrays)
            lam_new = _new_weights(rule, jac, lam)
            g = jax.tree_util.tree_map(lambda j: jnp.tensordot(lam_new, j, 1), jac)
            return L, w, g, lam_new

        def plain(_):
            def total(a):
                L, w = terms(a)
                return jnp.dot(lam, L), (L, w)

            (_, (L, w)), g = jax.value_and_grad(total, has_aux=True)(arrays)
            return L, w, g, lam

        if rule is None:
            L, w, g, lam_new = plain(None)
        else:
            L, w, g, lam_new = jax.lax.cond(i % every == 0, balanced, plain, None)
        upd, state_new = opt.update(g, state, arrays)
        arrays_new = optax.apply_updates(arrays, upd)
        ok = live & jnp.all(jnp.isfinite(L)) & jnp.all(jnp.isfinite(_flat(g)))
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        arrays_new, state_new, lam_new = keep((arrays_new, state_new, lam_new), (arrays, state, lam))
        # causal tolerance: once every window is trained (all weights near 1), tighten it
        eps_new = jnp.where(ok & (jnp.min(w) > 0.99), jnp.minimum(eps * 2.0, cfg["eps_max"]), eps)
        out = (arrays_new, state_new, lam_new, eps_new)
        return out, (jnp.dot(lam, L), L, lam, jnp.min(w), problem.params(theta[1]), live)

    @eqx.filter_jit
    def run(problem, theta, state, lam, eps, keys, steps, live):
        arrays, static = eqx.partition(theta, eqx.is_array)
        (arrays, state, lam, eps), out = jax.lax.scan(
            lambda c, x: step(problem, static, c, x), (arrays, state, lam, eps), (keys, steps, live)
        )
        return (eqx.combine(arrays, static), state, lam, eps), out

    return run


def _lbfgs_chunk():
    """Steps of symml's own L-BFGS (`symml._train._optimizers`): one loss evaluation per step.

    The problem, the network's static part and a template of its arrays are arguments (the
    template only for its shapes), so every time window reuses one compilation.
    """

    @eqx.filter_jit
    def run(problem, static, template, st, x, tc, lam, live):
        unravel = ravel_pytree(template)[1]

        def loss(x, tc, lam):
            L, _ = problem.terms(eqx.combine(unravel(x), static), tc, jnp.asarray(0.0))
            return jnp.dot(lam, L), L

        def step(carry, live):
            st, x, tc, lam = carry
            (value, L), grad = jax.value_and_grad(loss, has_aux=True)(x, tc, lam)
            st_new, x_new, _ = lbfgs_step(st, x, value, grad)
            go = live & (st.done == 0)
            st_new, x_new = jax.tree_util.tree_map(lambda a, b: jnp.where(go, a, b), (st_new, x_new), (st, x))
            u = unravel(x)[1]
            return (st_new, x_new, tc, lam), (value, L, lam, jnp.asarray(1.0), problem.params(u), go)

        return jax.lax.scan(step, (st, x, tc, lam), live)

    return run


def runners(cfg: dict) -> tuple:
    """The optimiser and the compiled Adam and L-BFGS chunks for ``cfg`` (see `optimise`).

    Built once per `symml.pinn` call and shared by its time windows: the windows differ only in
    array values, so they share one compilation.
    """
    adam = cfg["adam"]
    n_adam = int(adam.steps)
    peak = adam.lr
    lr: Any = peak if callable(peak) else (lambda c: learning_rate(adam.schedule, c, peak, max(n_adam, 1)))
    opt = optax.adam(lr)
    return opt, _adam_chunk(opt, cfg), _lbfgs_chunk()


def _write(path: str | os.PathLike, content: dict) -> None:
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def optimise(problem: Problem, theta: tuple, cfg: dict, run: tuple | None = None) -> tuple[tuple, dict]:
    """Run both phases; returns the trained ``(net, u)`` and the history (one row per step).

    ``cfg``: ``adam`` (an `symml.Adam`), ``lbfgs`` (steps), ``balance``, ``every``, ``chunks``,
    ``per``, ``resample``, ``eps``, ``eps_max``, ``seed``, ``checkpoint``, ``verbose``,
    ``options`` (the JSON fingerprint compared when resuming); ``run``: `runners` of ``cfg``
    (built here when None).
    """
    n_adam, n_lbfgs = int(cfg["adam"].steps), int(cfg["lbfgs"])
    opt, adam_run, lbfgs_run = runners(cfg) if run is None else run
    n_terms = sum(problem.active)
    arrays = eqx.filter(theta, eqx.is_array)
    state = opt.init(arrays)
    lam = jnp.ones(n_terms)
    eps = jnp.asarray(float(cfg["eps"]))
    rows: dict[str, list] = {"loss": [], "terms": [], "weights": [], "causal": [], "params": []}
    done = {"adam": 0, "lbfgs": 0}
    ck = cfg["checkpoint"]
    if ck is not None and ck.resume and os.path.exists(ck.path):
        theta, state, lam, eps, rows, done = _read(ck.path, theta, state, lam, cfg["options"])
    bar = tqdm(
        total=n_adam + n_lbfgs, initial=done["adam"] + done["lbfgs"], desc="pinn", disable=not cfg["verbose"]
    )

    def record(out):
        total, L, lams, wmin, ps, live = (np.asarray(o) for o in out)
        live = live.astype(bool)
        for name, v in zip(("loss", "terms", "weights", "causal", "params"), (total, L, lams, wmin, ps)):
            rows[name].extend(v[live].tolist())
        bar.update(int(live.sum()))
        if live.any():
            bar.set_postfix(loss=f"{float(total[live][-1]):.3e}")

    def save(phase_state):
        if ck is not None:
            _write(ck.path, _content(theta, phase_state, lam, eps, rows, done, cfg["options"]))

    key = jax.random.PRNGKey(cfg["seed"])
    since = 0
    while done["adam"] < n_adam:
        i0 = done["adam"]
        steps = jnp.arange(i0, i0 + CHUNK)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(steps)
        live = steps < n_adam
        (theta, state, lam, eps), out = adam_run(problem, theta, state, lam, eps, keys, steps, live)
        record(out)
        n = min(CHUNK, n_adam - i0)
        done["adam"] += n
        since += n
        if ck is not None and (since >= ck.every or done["adam"] == n_adam):
            save(state)
            since = 0
    if n_lbfgs:
        arrays, static = eqx.partition(theta, eqx.is_array)
        x, unravel = ravel_pytree(arrays)
        st = lbfgs_init(x)
        tc = collocation(key, problem.t_span, cfg["chunks"], 2 * cfg["per"], False)
        while done["lbfgs"] < n_lbfgs:
            j0 = done["lbfgs"]
            live = jnp.arange(j0, j0 + CHUNK) < n_lbfgs
            (st, x, _, _), out = lbfgs_run(problem, static, arrays, st, x, tc, lam, live)
            record(out)
            done["lbfgs"] += min(CHUNK, n_lbfgs - j0)
            if not bool(np.asarray(out[-1]).any()):
                done["lbfgs"] = n_lbfgs  # converged (or no further decrease possible)
                bar.update(n_lbfgs - j0)
        theta = eqx.combine(unravel(lbfgs_result(st)[0]), static)
        if ck is not None:
            save(None)
    bar.close()
    history = {k: np.asarray(v) for k, v in rows.items()}
    return theta, history


def _content(theta, state, lam, eps, rows, done, options) -> dict:
    return {
        "kind": "symml.pinn.checkpoint",
        "options": options,
        "done": dict(done),
        "theta": _io.encode_module(theta),
        "adam_state": _io.encode_module(state) if state is not None else None,
        "weights": _io.encode_array(lam),
        "eps": float(eps),
        "history": {k: np.asarray(v).tolist() for k, v in rows.items()},
    }


def _read(path, theta, state, lam, options):
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if not isinstance(d, dict) or d.get("kind") != "symml.pinn.checkpoint":
            raise ValueError("not a PINN checkpoint")
        if d["options"] != options:
            raise ValueError("it was written with other options")
        done = {k: int(v) for k, v in d["done"].items()}
        theta = _io.decode_module(theta, d["theta"])
        if d["adam_state"] is not None:
            state = _io.decode_module(state, d["adam_state"])
        lam = jnp.asarray(_io.decode_array(d["weights"]))
        rows = {k: list(v) for k, v in d["history"].items()}
        return theta, state, lam, jnp.asarray(d["eps"]), rows, done
    except (OSError, ValueError, KeyError, TypeError, _io.FileFormatError) as err:
        raise DataError(
            f"checkpoint={path!r} cannot be resumed ({err}); pass sm.Checkpoint({os.fspath(path)!r}, "
            "resume=False) to start afresh, or the options it was written with."
        ) from None
