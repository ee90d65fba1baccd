"""The training problem behind `symml.train`: what is trained, and the data it is compared with.

Trainable state ``theta`` (a pytree)::

    {"networks": {name: MLP weights}, "params": z, "ics": (T, n_learn), "nodes": (N, n_states)}

``z`` holds the chosen physical parameters in an unconstrained form (``p = exp(z)`` for
parameters declared positive, ``p = s z`` with ``s = max(|p0|, 1e-8)`` otherwise, so every
coordinate starts at order one). ``ics`` are learned initial values (one row per trajectory),
``nodes`` the learned start states of multiple-shooting segments (`symml._train._shooting`).
Everything else (data, fixed parameter values per trajectory, input scalings of the networks,
penalty weights) is in ``fixed``, a dict of arrays; the loss itself is in `symml._train._loss`.

>>> import numpy as np, sympy as sp, symml as sm
>>> u, v = sm.states("u v"); a, c = sm.parameters("alpha gamma", positive=True)
>>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
>>> ude = sm.Model([sp.Eq(u.diff(sm.t), a * u + U[0]), sp.Eq(v.diff(sm.t), -c * v + U[1])],
...                defaults={a: 1.3, c: 0.8})
>>> ts = np.linspace(0, 5, 21)
>>> data = sm.Dataset(t=ts, y={u: 1 + np.sin(ts), v: 1 + np.cos(ts)})
>>> pr = UDEProblem(ude, data, params=[c])
>>> sorted(pr.theta0), pr.theta0["params"].shape, pr.fixed["Y"].shape
(['ics', 'networks', 'nodes', 'params'], (1,), (1, 21, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile import compile, compile_exprs
from .._compile._networks import INIT_LAST_LAYER_SCALE, init_networks, trainable_filter
from .._data._dataset import Dataset
from .._declare import bind_params
from .._declare._symbols import state_name, t
from .._solve import get_solver, simulate
from ..errors import DataError, MissingValueError, SymmlError
from ._loss import COMPILER_OPTIONS, Config, make_objective, make_value_and_grad
from ._options import Loss, Shooting, Solve, as_loss, as_solve
from ._shooting import layout as shooting_layout
from ._shooting import node_values

_DEFAULT_LOSS, _DEFAULT_SOLVE = Loss(), Solve()


class UDEProblem:
    """Host-side description of one training problem (built once per `symml.train` call)."""

    def __init__(
        self,
        model,
        data,
        *,
        params: Sequence[Any] | Mapping[Any, float] | None = None,
        ics: Mapping[Any, float] | Sequence[Mapping[Any, float]] | None = None,
        learn_ics: bool | Sequence[Any] = False,
        loss: Any = _DEFAULT_LOSS,
        solve: Solve | Shooting = _DEFAULT_SOLVE,
        batch_size: int | None = None,
        standardize: bool = True,
        key: jax.Array | None = None,
    ):
        """Build the problem.

        Args:
            model, data, params, ics, learn_ics: as in `symml.train`.
            loss, solve: the `Loss` (or a misfit name or callable) and the `Solve` (or a `Shooting`).
            batch_size: rows (trajectories or segments) per first-phase step; None for all.
            standardize: set fresh networks' input standardisation from the data range.
            key: seeds fresh networks (default ``PRNGKey(0)``).

        Raises:
            DataError: ``data`` is not a Dataset, or values are not finite.
            ValueError: nothing to train, or a misplaced parameter or state.
            MissingValueError: a value that nothing provides.
        """
        if key is None:
            key = jax.random.PRNGKey(0)
        loss, solve = as_loss(loss), as_solve(solve)
        if not isinstance(data, Dataset):
            raise DataError(
                f"data must be an sm.Dataset (Dataset(t=..., y={{state: values}}), Dataset.from_csv, "
                f"...), got {type(data).__name__}."
            )
        if not model.neural and not params:
            raise ValueError(
                f"Model {model.name!r} has no neural terms and no parameters were chosen for training. "
                "Add a network with sm.neural(...), or pass params=[...] (or use sm.fit for parameters only)."
            )
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive number of trajectories, got {batch_size}")
        self.model = model
        self.data = data
        self.states = tuple(model.states)
        self.n_states = len(self.states)
        self.resolved = data.resolve(model)
        self.train_params, p_fixed, z0, pos, pscale, pmask = self._bind_params(params)
        self.p_fixed = p_fixed  # (before the networks: hidden inputs need a first simulation)
        self.keys = self._union_keys()
        self.learn = self._learn_set(learn_ics)
        self.traj_y0 = self._initial_values(ics)
        self.shooting = solve.segments
        nets0 = self._networks(key, standardize)

        layout = shooting_layout(self.resolved, self.keys, self.shooting)
        self.layout = layout
        n_nodes = layout["n_nodes"]
        nodes0 = (
            node_values(layout, self.resolved, self.states, lambda: self._first_simulation(nets0))
            if n_nodes
            else np.zeros((0, self.n_states))
        )

        net_train, net_rest = {}, {}
        for name, net in nets0.items():
            tr, rest = eqx.partition(net, trainable_filter(net))
            net_train[name] = tr
            net_rest[name] = rest
        rest_arrays, self.net_static = eqx.partition(net_rest, eqx.is_array)
        learn_idx = tuple(self.states.index(s) for s in self.learn)
        ics0 = self.traj_y0[:, list(learn_idx)] if learn_idx else np.zeros((self.traj_y0.shape[0], 0))
        f64 = jnp.result_type(float)
        self.theta0 = {
            "networks": net_train,
            "params": jnp.asarray(z0, f64),
            "ics": jnp.asarray(ics0, f64),
            "nodes": jnp.asarray(nodes0, f64),
        }
        B = layout["ts"].shape[0]
        if callable(loss.fn):
            self._check_loss(loss.fn, layout["Y"].shape)
        bs = None if (batch_size is None or int(batch_size) >= B) else int(batch_size)
        n_batches = 1 if bs is None else -(-B // bs)
        W = layout["W"]
        den = float(W.sum()) if isinstance(loss.fn, str) else float(n_batches)
        cden = float(layout["cmask"].sum() * self.n_states)
        self.fixed = {
            "networks": rest_arrays,
            "p": jnp.asarray(p_fixed, f64),
            "pmask": jnp.asarray(pmask, bool),
            "traj": jnp.asarray(layout["traj"], jnp.int32),
            "pos": jnp.asarray(pos, bool),
            "pscale": jnp.asarray(pscale, f64),
            "y0": jnp.asarray(self.traj_y0, f64),
            "ts": jnp.asarray(layout["ts"], f64),
            "t0": jnp.asarray(layout["t0"], f64),
            "t1": jnp.asarray(layout["t1"], f64),
            "Y": jnp.asarray(layout["Y"], f64),
            "W": jnp.asarray(W, f64),
            "y0_src": jnp.asarray(layout["y0_src"], jnp.int32),
            "next_src": jnp.asarray(layout["next_src"], jnp.int32),
            "cmask": jnp.asarray(layout["cmask"], f64),
            "last": jnp.asarray(layout["last"], jnp.int32),
            "den": jnp.asarray(max(den, 1.0), f64),
            "cden": jnp.asarray(max(cden, 1.0), f64),
            "l1": jnp.asarray(loss.l1, f64),
            "l2": jnp.asarray(loss.l2, f64),
            "continuity": jnp.asarray(solve.continuity, f64),
        }
        obs_idx, obs_program = self._observation()
        adj_name = solve.adjoint if isinstance(solve.adjoint, str) else None
        n_cp = None
        if adj_name == "checkpoint":
            # Storing every step makes the backward pass a plain reverse sweep (no recomputation)
            # and compiles 2-3x faster than diffrax's default log(max_steps) checkpoints; the
            # memory is max_steps solver states, small unless the system is large.
            n_cp = solve.max_steps if solve.max_steps * self.n_states <= 4_000_000 else None
        self.config = Config(
            program=compile(model, networks=nets0).program,
            states=self.states,
            params=tuple(model.params),
            obs_idx=obs_idx,
            obs_program=obs_program,
            nets_treedef=jax.tree_util.tree_structure(nets0),
            solver=get_solver(solve.solver),
            rtol=solve.rtol,
            atol=solve.atol,
            max_steps=solve.max_steps,
            adjoint=solve.adjoint,
            checkpoints=n_cp,
            loss=loss.fn,
            penalty=loss.penalised,
            shooting=bool(n_nodes),
            train_idx=tuple(model.params.index(p) for p in self.train_params),
            learn_idx=learn_idx,
            single=(B == 1),
            batch_size=bs,
            n_batches=n_batches,
        )

    # ------------------------------------------------------------------ checks and binding
    @staticmethod
    def _check_loss(loss, shape) -> None:
        """A callable loss must map three arrays of shape (rows, times, keys) to a scalar."""
        arr = jax.ShapeDtypeStruct(shape, jnp.result_type(float))
        try:
            out = jax.eval_shape(loss, arr, arr, arr)
        except Exception as err:  # any failure of user code is reported the same way
            raise ValueError(
                f"The loss function failed on arrays of shape {shape} (rows, times, keys): "
                f"{type(err).__name__}: {err}. It is called as loss(pred, target, weights) with JAX arrays "
                "and must return a scalar."
            ) from None
        if getattr(out, "shape", None) != ():
            raise ValueError(
                f"The loss function must return a scalar; on arrays of shape {shape} (rows, times, keys) "
                f"it returned {getattr(out, 'shape', type(out).__name__)}. Reduce it, e.g. with jnp.sum."
            )

    def _bind_params(self, params):
        """Parameter values per trajectory ``(T, n_params)`` (defaults, then the dataset's per-trajectory
        settings), and the unconstrained start ``z0`` of the trained ones."""
        model = self.model
        if params is None:
            chosen, given = [], {}
        elif isinstance(params, Mapping):
            given = {model.lookup(k): v for k, v in params.items()}
            chosen = list(given)
        else:
            chosen, given = [model.lookup(k) for k in params], {}
        for p in chosen:
            if p not in model.params:
                raise ValueError(
                    f"{p} is a state, not a parameter; learn initial values with learn_ics=[{p}]."
                )
        chosen = sorted(set(chosen), key=lambda p: model.params.index(p))
        n_traj = len(self.resolved)
        settings = [self._settings(i) for i in range(n_traj)]
        values = model.free_values({k: v for k, v in given.items()})
        missing = [p for p in model.params if p not in values and not all(p in st for st in settings)]
        if missing:
            names = ", ".join(p.name for p in missing)
            raise MissingValueError(
                f"No value for parameter(s) {names} of model {model.name!r}. Give the model defaults, or "
                f"train them from a guess: params={{{', '.join(p.name + ': ...' for p in missing)}}}."
            )
        rows, mask = [], []
        for st in settings:
            row = {**values, **st}
            rows.append(np.asarray(bind_params(model, {k: row[k] for k in model.params}), dtype=float))
            mask.append([p not in st for p in chosen])
        p_fixed = np.stack(rows)
        if not np.all(np.isfinite(p_fixed)):
            raise DataError(
                f"Parameter values must be finite, got {dict(zip(model.param_names(), p_fixed[0]))}."
            )
        z0, pos, scale = [], [], []
        for p in chosen:
            v = float(values[p]) if p in values else float(p_fixed[0, model.params.index(p)])
            if p.is_positive:
                if not v > 0:
                    raise ValueError(
                        f"Parameter {p} is declared positive but its starting value is {v}; give a "
                        f"positive initial guess, e.g. params={{{p.name}: 1.0}}."
                    )
                z0.append(np.log(v))
                pos.append(True)
                scale.append(1.0)
            else:
                s = max(abs(v), 1e-8)
                z0.append(v / s)
                pos.append(False)
                scale.append(s)
        mask = np.asarray(mask, bool).reshape(n_traj, len(chosen))
        return (
            tuple(chosen),
            p_fixed,
            np.asarray(z0, float),
            np.asarray(pos, bool),
            np.asarray(scale, float),
            mask,
        )

    def _settings(self, i: int) -> dict:
        """Parameter values stored with trajectory ``i`` (experiment settings), if the dataset has any."""
        settings = getattr(self.data, "settings", None)
        return dict(settings(self.model, i)) if settings is not None else {}

    def _union_keys(self) -> list[sp.Expr]:
        keys: list[sp.Expr] = []
        for _, exprs in self.resolved:
            for e in exprs:
                if e not in keys:
                    keys.append(e)
        return keys

    def _learn_set(self, learn_ics) -> tuple:
        if learn_ics is True:
            return self.states
        if learn_ics is False or learn_ics is None:
            return ()
        out = []
        for k in learn_ics:
            s = self.model.lookup(k)
            if s not in self.model.rhs:
                raise ValueError(f"learn_ics lists {s}, which is a parameter; pass it in params=[...].")
            out.append(s)
        return tuple(s for s in self.states if s in out)

    def _initial_values(self, ics) -> np.ndarray:
        model, n_traj = self.model, len(self.data.series)
        if ics is None:
            ics_list = [{}] * n_traj
        elif isinstance(ics, Mapping):
            ics_list = [ics] * n_traj
        else:
            ics_list = list(ics)
            if len(ics_list) != n_traj:
                raise ValueError(
                    f"ics lists {len(ics_list)} dicts for {n_traj} trajectories; give one per trajectory."
                )
        rows = []
        for i, given in enumerate(ics_list):
            vals = {k: v for k, v in model.defaults.items() if k in model.rhs}
            vals.update(self.data.initial_values(model, i))
            for k, v in given.items():
                s = model.lookup(k)
                if s not in model.rhs:
                    raise ValueError(
                        f"ics has a value for parameter {s}; pass parameters with params={{...}}."
                    )
                vals[s] = v
            missing = [s for s in self.states if s not in vals and s not in self.learn]
            if missing:
                names = ", ".join(state_name(s) for s in missing)
                where = f" of trajectory {i}" if n_traj > 1 else ""
                raise MissingValueError(
                    f"No initial value for state(s) {names}{where}: they are not observed at the first time. "
                    f"Pass ics={{{', '.join(state_name(s) + ': ...' for s in missing)}}}, give the model "
                    f"defaults, or learn them with learn_ics=[{', '.join(state_name(s) for s in missing)}]."
                )
            row = np.array([float(vals.get(s, 0.0)) for s in self.states])
            if not np.all(np.isfinite(row)):
                raise DataError(f"Initial values must be finite; trajectory {i} has {row}.")
            rows.append(row)
        return np.stack(rows)

    # ------------------------------------------------------------------ networks
    def _networks(self, key, standardize) -> dict:
        model = self.model
        nets = {k: v for k, v in model.networks.items()}
        fresh = [s for s in model.neural if s.name not in nets]
        if fresh:
            new = init_networks(fresh, key, last_layer_scale=INIT_LAST_LAYER_SCALE)
            if standardize:
                dom = self._input_domain(fresh, {**nets, **new})
                for s in fresh:
                    lo = np.array([dom[e][0] for e in s.inputs])
                    hi = np.array([dom[e][1] for e in s.inputs])
                    half = (hi - lo) / 2
                    half = np.where(half > 0, half, np.maximum(np.abs(lo), 1.0))
                    new[s.name] = new[s.name].with_input_scaling((lo + hi) / 2, half)
            nets.update(new)
        return {s.name: nets[s.name] for s in model.neural}

    def _input_domain(self, specs, nets) -> dict:
        """Range of every network input over the data (hidden inputs from a first simulation)."""
        dom: dict[Any, tuple[float, float]] = {}
        needed = {e for s in specs for e in s.inputs}
        tmin = min(float(s.t[0]) for s, _ in self.resolved)
        tmax = max(float(s.t[-1]) for s, _ in self.resolved)
        if t in needed:
            dom[t] = (tmin, tmax)
        for s, exprs in self.resolved:
            for e, v in zip(exprs, s.values.values()):
                if e in needed:
                    lo, hi = float(np.min(v)), float(np.max(v))
                    old = dom.get(e, (lo, hi))
                    dom[e] = (min(lo, old[0]), max(hi, old[1]))
        hidden = [e for e in needed if e not in dom]
        if hidden:
            trajs = self._first_simulation(nets)
            for e in hidden:
                vals = np.concatenate([np.asarray(tr.y[:, self.states.index(e)]) for tr in trajs])
                vals = vals[np.isfinite(vals)]
                dom[e] = (float(vals.min()), float(vals.max())) if vals.size else (-1.0, 1.0)
        return dom

    def _first_simulation(self, nets) -> list:
        """Solve every trajectory once with the starting networks and parameters."""
        cache = getattr(self, "_sims", None)
        if cache is not None:
            return cache
        model = self.model.with_networks(nets)
        out = []
        for i, (s, _) in enumerate(self.resolved):
            ics = dict(zip(self.states, self.traj_y0[i]))
            params = dict(zip(model.params, self.p_fixed[i]))
            try:
                out.append(simulate(model, ics=ics, saveat=jnp.asarray(s.t), params=params, max_steps=65536))
            except SymmlError as err:
                raise MissingValueError(
                    f"Could not simulate trajectory {i} with the starting networks to find the range of "
                    f"hidden states ({err}). Give initial values closer to the data, or pass networks with "
                    "model.with_networks(...)."
                ) from None
        self._sims = out
        return out

    # ------------------------------------------------------------------ layout
    def _observation(self):
        if all(k in self.states for k in self.keys):
            return tuple(self.states.index(k) for k in self.keys), None
        return None, compile_exprs(self.model, self.keys, title="observables").program

    # ------------------------------------------------------------------ theta -> values
    def networks_of(self, theta) -> dict:
        rest = eqx.combine(self.fixed["networks"], self.net_static)
        return {k: eqx.combine(theta["networks"][k], rest[k]) for k in rest}

    def loss_function(self, with_grad: bool = True):
        """A jitted ``f(theta) -> loss`` (or ``(loss, grad)``) over all data, with this problem's
        adjoint: for tests, benchmarks and custom optimisers."""
        fixed = self.fixed
        if with_grad:
            vg = make_value_and_grad(self.config, self.net_static)
            fn = lambda theta: vg(theta, fixed, jax.random.PRNGKey(0), True)  # noqa: E731
        else:
            objective = make_objective(self.config, self.net_static)
            fn = lambda theta: objective(theta, fixed, None, None, fixed["den"], fixed["cden"], 1.0)  # noqa: E731
        return jax.jit(fn, compiler_options=COMPILER_OPTIONS)

    def ics_dict(self, i: int) -> dict:
        """Starting initial values of trajectory ``i`` as ``{state: value}``."""
        return dict(zip(self.states, map(float, self.traj_y0[i])))

    def trained_values(self, theta) -> dict:
        """``{param: value}`` of the trained parameters (computed on the host)."""
        z = np.asarray(theta["params"])
        vals = np.where(np.asarray(self.fixed["pos"]), np.exp(z), z * np.asarray(self.fixed["pscale"]))
        return {p: float(v) for p, v in zip(self.train_params, vals)}

    def initial_values(self, theta) -> np.ndarray:
        """Initial values per trajectory ``(T, n_states)``, learned ones substituted (host)."""
        y0 = np.array(self.traj_y0, dtype=float)
        if self.config.learn_idx:
            y0[:, list(self.config.learn_idx)] = np.asarray(theta["ics"])
        return y0
