"""The host side of one training run: chunks of dispatched steps, progress, history, checkpoints.

Steps are dispatched asynchronously in chunks; the host syncs once per chunk (about every
`CHUNK_SECONDS`) to record the losses, update the progress bar and decide whether a phase
stopped (target reached, L-BFGS converged, too many rejected steps). A checkpoint is written
every ``Checkpoint.every`` iterations and at the end.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._declare._model import Model
from .._declare._symbols import Parameter
from . import _checkpoint
from ._iteration import EVAL, LBFGS, STOP_INITIAL, STOP_REJECTED, STOP_TARGET, Carry, best_theta, start_lbfgs
from ._options import Checkpoint
from ._result import History, Trained, TrainingError, TrainingWarning
from ._ude_problem import UDEProblem

CHUNK_MAX = 2000  # steps dispatched before the host syncs, at most
CHUNK_SECONDS = 0.25  # aim for a progress update (and a host sync) this often


class Run:
    """One training run on the host.

    Args:
        problem: the `UDEProblem`.
        record: the flat options record stored in the result (`Trained.options`).
        options: the JSON of the option objects (stored in checkpoints, compared on resuming).
        totals: iterations of each phase, ``{"main": n, "polish": m}``.
        label: the first phase's name on the progress bar.
        checkpoint: where to write the state, or None.
        verbose: show a progress bar.
        t_start: ``time.perf_counter()`` when the call started (history times count from it).
    """

    def __init__(
        self,
        problem: UDEProblem,
        record: dict[str, Any],
        options: dict[str, Any],
        totals: dict[str, int],
        label: str,
        checkpoint: Checkpoint | None,
        verbose: bool,
        t_start: float,
    ):
        self.problem, self.record, self.options = problem, record, options
        self.totals, self.label = dict(totals), label
        self.checkpoint = checkpoint
        self.t_start = t_start
        self.losses: list[np.ndarray] = []
        self.phases: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.flags: list[np.ndarray] = []
        self.done = {"main": 0, "polish": 0}
        self.timing = {"compile": 0.0, "main": 0.0, "polish": 0.0}
        self.offset = 0.0
        self.verbose = verbose
        self.bar: Any = None
        self.step: Any = None
        self.key: Any = None
        self.hyper: Any = None
        self.compiled = False
        self.since_checkpoint = 0

    # -------------------------------------------------------------- progress
    def _bar(self):
        if self.bar is None:
            total = self.totals["main"] + self.totals["polish"]
            self.bar = tqdm(total=total, disable=not self.verbose, desc="train", unit="it", leave=True)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.t_start

    # -------------------------------------------------------------- phases
    def _chunk(self, carry: Carry, code: int, n: int) -> tuple[Carry, np.ndarray, float]:
        """Dispatch ``n`` steps, then sync once; returns the carry, the records up to and
        including a stop, and the wall time of the steps (compilation excluded)."""
        code_ = jnp.asarray(code, jnp.int32)
        fixed, key, hyper = self.problem.fixed, self.key, self.hyper
        records = []
        if not self.compiled:
            # The first call traces and compiles synchronously, then dispatches.
            t0 = time.perf_counter()
            carry, rec = self.step(carry, fixed, key, code_, hyper)
            records.append(rec)
            self.timing["compile"] = time.perf_counter() - t0
            self.compiled = True
            n -= 1
        t0 = time.perf_counter()
        for _ in range(n):
            carry, rec = self.step(carry, fixed, key, code_, hyper)
            records.append(rec)
        recs = np.asarray(jax.device_get(records)).reshape(len(records), 3)  # the one sync per chunk
        dt = time.perf_counter() - t0
        stops = np.flatnonzero(recs[:, 2] != 0)
        k = int(stops[0]) + 1 if stops.size else len(records)
        return carry, recs[:k], dt

    def phase(self, carry: Carry, code: int, name: str) -> Carry:
        """Run phase ``name`` (``"main"`` or ``"polish"``) with step code ``code`` to its end."""
        total = self.totals[name]
        bar = self._bar()
        if self.done[name] >= total:  # nothing left (e.g. the target loss was reached before)
            return carry
        bar.set_description(f"train ({'L-BFGS' if code == LBFGS else self.label})")
        if code == LBFGS and self.done[name] == 0:
            carry = start_lbfgs(carry)
        every = self.checkpoint.every if self.checkpoint is not None else None
        n = 10
        while self.done[name] < total:
            remaining = total - self.done[name]
            to_ckpt = every - self.since_checkpoint if every is not None else remaining
            n = max(1, min(n, remaining, to_ckpt, CHUNK_MAX))
            t_before = self._elapsed()
            carry, recs, dt = self._chunk(carry, code, n)
            k = recs.shape[0]
            self.timing[name] += dt
            warn = recs[:, 2] != STOP_INITIAL
            self._record(recs[:, 0], recs[:, 1] != 0, 0 if name == "main" else 1, t_before, warn)
            self.done[name] += k
            self.since_checkpoint += k
            bar.update(k)
            bar.set_postfix(loss=f"{recs[-1, 0]:.4g}", refresh=False)
            stop = int(recs[-1, 2])
            if stop:
                self._stopped(carry, stop)
                carry = carry._replace(stop=jnp.zeros_like(carry.stop))
                if stop == STOP_TARGET:  # early stopping: no further iterations in any phase
                    bar.total = bar.n
                    bar.refresh()
                    self.done = dict(self.totals)
                elif code == LBFGS:  # converged, or no further decrease possible
                    bar.total = max(bar.n, bar.total - (total - self.done[name]))
                    bar.refresh()
                    self.done[name] = total
            if every is not None and self.since_checkpoint >= every:
                self.write_checkpoint(carry, self.result(carry))
                self.since_checkpoint = 0
            if k and dt > 0:
                n = int(min(CHUNK_MAX, max(1, round(k * CHUNK_SECONDS / dt))))
        return carry

    def finish(self, carry: Carry) -> Carry:
        """Evaluate the parameters to be returned once, unless L-BFGS already did."""
        if self.losses and self.phases[-1].size and self.phases[-1][-1] == 1:
            return carry
        t_before = self._elapsed()
        carry, recs, _ = self._chunk(carry, EVAL, 1)
        self._record(recs[:, 0], recs[:, 1] != 0, 2, t_before)
        if int(recs[-1, 2]) == STOP_INITIAL:
            raise self._initial_error()
        return carry

    def _record(self, losses, flags, phase, t_before, warn=None) -> None:
        now = self._elapsed()
        k = losses.shape[0]
        offset = sum(x.shape[0] for x in self.losses)
        self.losses.append(losses.astype(float))
        self.flags.append(np.asarray(flags, bool))
        self.phases.append(np.full(k, phase, np.int8))
        self.times.append(t_before + (now - t_before) * (np.arange(1, k + 1) / max(k, 1)))
        bad = np.flatnonzero(flags & (True if warn is None else warn)) + offset
        if phase == 0 and bad.size:
            warnings.warn(
                f"Training step(s) {', '.join(map(str, bad[:5]))}{' ...' if bad.size > 5 else ''} gave a "
                "NaN/inf loss or gradient (the ODE solve diverged or failed after the previous update); "
                "the update was undone and the step size halved. If this keeps happening, lower the lr of "
                "the optimizer, use solve=sm.Shooting(...), or tighten rtol or raise max_steps in "
                "solve=sm.Solve(...).",
                TrainingWarning,
                stacklevel=5,
            )

    def _stopped(self, carry: Carry, stop: int) -> None:
        if stop == STOP_INITIAL:
            raise self._initial_error()
        if stop == STOP_REJECTED:
            step = sum(x.shape[0] for x in self.losses) - 1
            raise TrainingError(
                f"Training stopped at step {step}: {int(carry.bad_run)} consecutive steps gave a NaN/inf "
                "loss or gradient even though the step size was halved each time. The ODE solve "
                "diverges or fails near these parameters. Try a smaller lr (sm.Adam(lr=...)), multiple "
                "shooting (solve=sm.Shooting(...)), a tighter rtol or a larger max_steps "
                "(solve=sm.Solve(...)), or check the data and initial values. The last good result is in "
                "err.trained.",
                trained=self.result(carry),
            )

    def _initial_error(self) -> TrainingError:
        return TrainingError(
            "The loss is NaN/inf at the starting parameters: the ODE solve fails or diverges before the "
            "last data time (or the loss function returns NaN). Check the initial values and parameter "
            "values, use solve=sm.Shooting(...) to integrate over shorter segments, or raise max_steps "
            "in solve=sm.Solve(...)."
        )

    # -------------------------------------------------------------- results
    def history(self) -> History:
        def cat(xs, dtype):
            return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)

        return History(
            loss=cat(self.losses, float),
            phase=cat(self.phases, np.int8),
            time=cat(self.times, float),
            rejected=np.flatnonzero(cat(self.flags, bool)).astype(np.int64),
        )

    def result(self, carry: Carry) -> Trained:
        """A `Trained` at the last point with a finite loss."""
        problem = self.problem
        theta = best_theta(carry)
        trained_params = problem.trained_values(theta)
        ics = [dict(zip(problem.states, map(float, row))) for row in problem.initial_values(theta)]
        defaults = dict(problem.model.defaults)
        defaults.update(trained_params)
        if len(ics) == 1:
            defaults.update(ics[0])
        base = problem.model
        model = Model(
            base.equations,
            defaults=defaults,
            name=base.name,
            params=[p for p in base.params if not isinstance(p, Parameter)],
            networks=problem.networks_of(theta),
        )
        timing = dict(self.timing)
        timing["total"] = self._elapsed()
        nodes = np.asarray(theta["nodes"])
        loss = float(carry.prev_f) if bool(carry.has_prev) else float("nan")
        return Trained(
            model, problem.data, trained_params, ics, self.history(), self.record, timing, nodes, loss, base
        )

    # -------------------------------------------------------------- checkpoints
    def write_checkpoint(self, carry: Carry, trained: Trained) -> None:
        assert self.checkpoint is not None  # only called with a checkpoint (internal invariant)
        progress = dict(done=dict(self.done), since=self.since_checkpoint, elapsed=self._elapsed())
        _checkpoint.write(self.checkpoint.path, trained, carry, progress, self.options)

    def restore(self, carry: Carry) -> Carry:
        """Continue from the checkpoint file: the device state, the history and the progress."""
        assert self.checkpoint is not None
        carry, progress, prev = _checkpoint.read(self.checkpoint.path, carry, self.options)
        h = prev.history
        keep = len(h) - (1 if len(h) and h.phase[-1] == 2 else 0)  # drop the final evaluation
        if keep:
            flags = np.zeros(len(h), bool)
            flags[h.rejected] = True
            self.losses.append(h.loss[:keep])
            self.phases.append(h.phase[:keep])
            self.times.append(h.time[:keep])
            self.flags.append(flags[:keep])
        self.done = progress["done"]
        self.since_checkpoint = progress["since"]
        self.offset = progress["elapsed"]
        self.t_start = time.perf_counter()
        for k in ("main", "polish"):
            self.timing[k] = float(prev.timing.get(k, 0.0))
        return carry
