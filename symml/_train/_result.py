"""The result of ``sm.train``: trained networks and parameters, the loss history, predictions,
and exact save/load (JSON, no pickle).

``Trained`` is what the next steps of the chain consume: ``trained.model`` is an ordinary
`symml.Model` carrying the trained networks (simulate it, save it, distill it);
``trained.network(U)`` evaluates a network on arrays; ``trained.network_data(U)`` gives its
inputs and outputs along the fitted trajectories; ``trained.data`` is the training data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .. import _serialize as _io
from .._compile._networks import n_parameters
from .._data._dataset import Dataset
from .._declare._symbols import Neural, t
from .._solve import SOLVERS, simulate
from ..errors import SymmlError, UnknownNameError, suggest


class TrainingError(SymmlError, RuntimeError):
    """Training cannot continue (diverging steps, a bad checkpoint). ``.trained`` holds the last
    good result when there is one."""

    def __init__(self, message: str, trained: Trained | None = None):
        super().__init__(message)
        self.trained = trained


class TrainingWarning(UserWarning):
    """A training step gave NaN/inf and was undone."""


@dataclasses.dataclass(frozen=True, eq=False)
class History:
    """Per-iteration record of a training run.

    Attributes:
        loss: the objective at each iteration: for the first-phase optimiser the loss at the
            point it evaluated (non-finite where the step was rejected), for the L-BFGS polish
            the best loss accepted so far, and a last entry for the final parameters.
        phase: 0 first-phase optimiser, 1 L-BFGS polish, 2 final evaluation.
        time: seconds since training started (interpolated linearly within a device chunk;
            the first entries include compilation).
        rejected: iterations whose loss or gradient was NaN/inf (the update was not applied).
    """

    loss: np.ndarray
    phase: np.ndarray
    time: np.ndarray
    rejected: np.ndarray

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    @property
    def final(self) -> float:
        """Loss of the returned parameters."""
        return float(self.loss[-1])

    def time_to(self, level: float) -> float | None:
        """Seconds until the loss first reached ``level`` (``None`` if it never did)."""
        hit = np.flatnonzero(self.loss <= level)
        return float(self.time[hit[0]]) if hit.size else None

    def __repr__(self) -> str:
        return f"History({len(self)} iterations, final loss {self.final:.4g}, {self.rejected.size} rejected)"


class Trained:
    """A trained universal ODE (see `symml.train`).

    Attributes:
        model: the model with the trained networks and trained parameter values as defaults
            (and, for one trajectory, its initial values), ready for ``sm.simulate``.
        networks: ``{name: NeuralNetwork}``.
        params: trained physical parameters ``{symbol: value}``.
        ics: initial values used for each trajectory (learned ones included), ``[{state: value}]``.
        data: the training `symml.Dataset`.
        history: a `History`.
        loss: the training objective at the returned parameters.
        options: the training options as a flat record of names and numbers (``"steps"``,
            ``"lr"``, ``"target_loss"``, ``"solver"``, ...); the option objects themselves are
            stored, as JSON, in checkpoints.
        timing: seconds spent compiling and iterating.

    Examples:
        >>> import numpy as np, sympy as sp, symml as sm
        >>> lv = sm.zoo.lotka_volterra()
        >>> u, v = lv.states
        >>> alpha, beta, delta, gamma = lv.params
        >>> data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 11))
        >>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
        >>> ude = sm.Model([sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
        ...                defaults={alpha: 1.3, gamma: 0.8})
        >>> trained = sm.train(ude, data, optimizer=sm.Adam(steps=20), polish=None, seed=0, verbose=False)
        >>> type(trained).__name__, sorted(trained.networks), len(trained.history)
        ('Trained', ['U'], 21)
        >>> sorted(map(int, set(trained.history.phase)))
        [0, 2]
        >>> X, Y = trained.network_data(U)
        >>> X.shape, Y.shape
        ((11, 2), (11, 2))
        >>> trained.network(U)(np.ones((3, 2))).shape
        (3, 2)
        >>> trained.predict(ts=5)[u].shape
        (5,)
    """

    def __init__(
        self,
        model,
        data,
        params: dict,
        ics: list[dict],
        history: History,
        options: dict,
        timing: dict | None = None,
        nodes: np.ndarray | None = None,
        loss: float | None = None,
        base=None,
    ):
        self.model = model
        self.data = data
        self.params = dict(params)
        self.ics = [dict(d) for d in ics]
        self.history = history
        self.options = dict(options)
        self.timing = dict(timing or {})
        self.nodes = np.zeros((0, len(model.states))) if nodes is None else np.asarray(nodes)
        self._loss = float(history.final) if loss is None else float(loss)
        # The model that was trained (same equations, no trained values): predictions solve it
        # with the trained networks and values passed in, so they share its compiled solver.
        self._base = model if base is None else base

    # ------------------------------------------------------------------ access
    @property
    def networks(self) -> dict:
        return dict(self.model.networks)

    @property
    def loss(self) -> float:
        """The training objective at the returned parameters."""
        return self._loss

    def _spec(self, U: Any):
        specs = {s.name: s for s in self.model.neural}
        if U is None:
            if len(specs) != 1:
                raise ValueError(f"This model has networks {sorted(specs)}; say which one: network('name').")
            return next(iter(specs.values()))
        name = U.name if isinstance(U, Neural) else getattr(U, "name", U)
        if isinstance(U, sp.Basic) and hasattr(getattr(U, "func", None), "_symml_neural"):
            # the placeholder's class carries its spec (set by sm.neural; SymPy's stubs cannot know)
            name = U.func._symml_neural.name  # pyright: ignore[reportAttributeAccessIssue]
        if name not in specs:
            raise UnknownNameError(
                f"No network {name!r}; this model has {sorted(specs)}." + suggest(str(name), specs)
            )
        return specs[name]

    def network(self, U: Any = None):
        """The trained network ``U`` (placeholder, output ``U[k]`` or name; may be omitted when
        there is one) as a function on arrays: ``(n, n_inputs) -> (n, n_outputs)``; a single
        input vector gives one output vector.

        Inputs come in the order of the placeholder's ``inputs``.
        """
        spec = self._spec(U)
        net = self.model.networks[spec.name]

        def call(x):
            x = jnp.asarray(x, dtype=jnp.result_type(float))
            if x.ndim not in (1, 2) or x.shape[-1] != len(spec.inputs):
                raise ValueError(
                    f"network {spec.name!r} takes arrays of shape (n, {len(spec.inputs)}) (inputs "
                    f"{', '.join(map(str, spec.inputs))}); got shape {x.shape}."
                )
            return _batched(net, x)

        call.spec = spec
        return call

    # ------------------------------------------------------------------ predictions
    def predict(self, ics: dict | None = None, ts: Any = None, *, trajectory: int = 0, **simulate_kwargs):
        """Simulate the trained model from ``ics`` (default: the initial values of data
        trajectory ``trajectory``, learned ones included) at times ``ts`` (default: that
        trajectory's data times; a count or an array), with the training solver and tolerances
        and that trajectory's parameter settings. Returns a `symml.Trajectory`.

        Extra keywords go to `symml.simulate` (``params=`` overrides parameter values).
        """
        if not 0 <= trajectory < len(self.ics):
            raise IndexError(f"trajectory must be in 0..{len(self.ics) - 1}, got {trajectory}")
        start = dict(self.ics[trajectory])
        for k, v in (ics or {}).items():
            start[self.model.lookup(k)] = v
        params = dict(self.params)
        settings = getattr(self.data, "settings", None)
        if settings is not None:
            params.update(settings(self.model, trajectory))  # per-trajectory settings, held fixed
        series = self.data.series[trajectory]
        if ts is None:
            ts = np.asarray(series.t)
        t_span = None
        if isinstance(ts, (int, np.integer)) and not isinstance(ts, bool):
            t_span = (float(series.t[0]), float(series.t[-1]))
        solver = self.options.get("solver", "tsit5")
        kwargs: dict[str, Any] = dict(solver=solver if solver in SOLVERS else "tsit5")
        kwargs.update(rtol=self.options.get("rtol", 1e-7), atol=self.options.get("atol", 1e-9))
        extra = dict(simulate_kwargs)
        params.update({self.model.lookup(k): v for k, v in (extra.pop("params", None) or {}).items()})
        kwargs.update(extra)
        saveat: Any = ts
        return simulate(
            self._base,
            ics=start,
            t_span=t_span,
            saveat=saveat,
            params=params,
            networks=self.networks,
            **kwargs,
        )

    def mse(self) -> float:
        """Mean squared error of one simulation per trajectory against the data (single shooting,
        over every observed value; compare with the noise variance)."""
        total, count = 0.0, 0
        for i, (s, exprs) in enumerate(self.data.resolve(self.model)):
            traj = self.predict(trajectory=i)
            for e, v in zip(exprs, s.values.values()):
                r = np.asarray(traj[e]) - np.asarray(v)
                total += float(np.sum(r * r))
                count += r.size
        return total / count

    def network_data(self, U: Any = None, points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``X (n, n_inputs)`` and outputs ``Y (n, n_outputs)`` of network ``U`` along the
        fitted trajectories, at the data times (or at ``points`` equally spaced times per
        trajectory). This is the data a symbolic regression of the network should explain."""
        spec = self._spec(U)
        f = self.network(spec.name)
        xs = []
        for i, s in enumerate(self.data.series):
            ts = np.asarray(s.t) if points is None else np.linspace(s.t[0], s.t[-1], int(points))
            traj = self.predict(trajectory=i, ts=ts)
            cols = [np.asarray(traj.t) if e == t else np.asarray(traj[e]) for e in spec.inputs]
            xs.append(np.stack(cols, axis=-1))
        X = np.concatenate(xs, axis=0)
        return X, np.asarray(f(X))

    def domain(self, U: Any = None) -> dict:
        """``{input: (min, max)}`` of network ``U``'s inputs along the fitted trajectories."""
        spec = self._spec(U)
        X, _ = self.network_data(spec.name)
        return {e: (float(X[:, j].min()), float(X[:, j].max())) for j, e in enumerate(spec.inputs)}

    # ------------------------------------------------------------------ display
    def plot_history(self, ax=None, noise_floor: float | None = None):
        """Loss against iteration (log scale), phases marked; returns the matplotlib axes."""
        import matplotlib.pyplot as plt  # on first use: pyplot is slow to import and picks a backend

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        h = self.history
        it = np.arange(len(h))
        finite = np.isfinite(h.loss)
        names = {0: self.options.get("optimizer", "optimiser"), 1: "L-BFGS polish", 2: "final"}
        for ph in (0, 1, 2):
            sel = finite & (h.phase == ph)
            if sel.any():
                ax.semilogy(it[sel], h.loss[sel], ".-" if ph == 2 else "-", ms=4, label=str(names[ph]))
        if h.rejected.size:
            ax.plot(h.rejected, np.full(h.rejected.size, np.nanmax(h.loss[finite])), "rx", label="rejected")
        if noise_floor is not None:
            ax.axhline(noise_floor, color="k", ls="--", lw=1, label="noise floor")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend()
        return ax

    def summary(self) -> str:
        lines = [
            f"Trained {self.model.name!r}: final loss {self.loss:.6g} after {len(self.history)} iterations"
        ]
        for p, v in self.params.items():
            lines.append(f"  {p} = {v:.6g}")
        for name, net in self.model.networks.items():
            lines.append(f"  network {name}: {n_parameters(net)} weights")
        if self.history.rejected.size:
            lines.append(f"  rejected steps: {self.history.rejected.size}")
        if self.timing:
            lines.append("  timing: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timing.items()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        nets = ", ".join(self.model.networks)
        return (
            f"Trained(model={self.model.name!r}, networks=[{nets}], loss={self.loss:.4g}, "
            f"iterations={len(self.history)})"
        )

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write to a JSON file (same as ``sm.save(trained, path)``)."""
        _io.save(self, path)

    @staticmethod
    def load(path) -> Trained:
        obj = _io.load(path)
        if not isinstance(obj, Trained):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a trained model")
        return obj


@eqx.filter_jit
def _batched(net, x):
    return net.batched(x)


# ----------------------------------------------------------------------------- encoding


def _enc_values(d: dict) -> list:
    return [[_io.encode_expr(k), float(v).hex()] for k, v in d.items()]


def _dec_values(items: Sequence) -> dict:
    return {_io.decode_expr(k): float.fromhex(v) for k, v in items}


def encode_trained(tr: Trained) -> dict:
    h = tr.history
    return {
        "model": _io.encode_model(tr.model),
        "data": _io.to_json_dict(tr.data)["content"],
        "params": _enc_values(tr.params),
        "ics": [_enc_values(d) for d in tr.ics],
        "nodes": _io.encode_array(tr.nodes),
        "history": {
            "loss": _io.encode_array(h.loss),
            "phase": _io.encode_array(h.phase),
            "time": _io.encode_array(h.time),
            "rejected": _io.encode_array(h.rejected),
        },
        "options": _json_safe(tr.options),
        "timing": {k: float(v).hex() for k, v in tr.timing.items()},
        "loss": float(tr.loss).hex(),
    }


def decode_trained(d: dict) -> Trained:
    model = _io.decode_model(d["model"])
    data = _io.from_json_dict({"symml": "dataset", "version": _io.FORMAT_VERSION, "content": d["data"]})
    if not isinstance(data, Dataset):
        raise _io.FileFormatError("the trained model's data is not a dataset")
    h = d["history"]
    history = History(
        loss=_io.decode_array(h["loss"]),
        phase=_io.decode_array(h["phase"]),
        time=_io.decode_array(h["time"]),
        rejected=_io.decode_array(h["rejected"]),
    )
    return Trained(
        model,
        data,
        _dec_values(d["params"]),
        [_dec_values(x) for x in d["ics"]],
        history,
        dict(d.get("options", {})),
        {k: float.fromhex(v) for k, v in d.get("timing", {}).items()},
        _io.decode_array(d["nodes"]),
        float.fromhex(d["loss"]) if "loss" in d else None,
    )


def _json_safe(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if v is None or isinstance(v, (bool, int, str)):
            out[k] = v
        elif isinstance(v, float):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        else:
            out[k] = repr(v)
    return out


_io.register("trained", Trained, encode_trained, decode_trained)
