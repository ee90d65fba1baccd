"""The benchmark grid: problems x methods x noise levels x seeds, in a process pool, resumable.

Each run simulates the training data (`symml.Dataset.from_model`, relative noise),
calls the method, and scores the model it returns (`symml.bench.metrics`). Rows are
appended to ``results.csv`` as runs finish, so an interrupted benchmark resumes: rows
already there (same problem, method, noise and seed) are skipped. ``results.json`` (rows
plus software versions) and ``report.md`` are rewritten at the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import sympy as sp

if TYPE_CHECKING:
    import pandas as pd

from .._data._dataset import Dataset
from .._declare._model import Model
from .._serialize import from_json_dict, to_json_dict
from ..distill.base import round_floats
from ..errors import SymmlError
from . import metrics
from .executors import InProcess, check_scheduler, make_executor
from .methods import Outcome, get_method, method_name
from .problems import _BUILTIN, BenchError, Problem, get_problem, is_builtin, parameter_count
from .report import write_outputs
from .results import COLUMNS, STAGES, append_row, check_writable, read_rows, repair, versions

__all__ = ["COLUMNS", "STAGES", "run", "run_one", "versions", "BenchWarning"]


class BenchWarning(UserWarning):
    """Something in the benchmark setup was changed to make it run (e.g. jobs=1)."""


# ----------------------------------------------------------------------------- one run


def _model_of(result: Any) -> Outcome:
    if isinstance(result, Outcome):
        return result
    if isinstance(result, Model):
        return Outcome(result)
    model = getattr(result, "model", None)
    if isinstance(model, Model):
        return Outcome(model)
    raise BenchError(
        f"A method must return a symml Model (or an object with .model, or an Outcome); got "
        f"{type(result).__name__}."
    )


def _equations(model: Model) -> str:

    # SymPy's `subs` overloads take a Mapping keyed by `Basic | complex` exactly (keys are invariant).
    values: dict[sp.Basic | complex, sp.Basic | complex] = {
        p: model.defaults[p] for p in model.params if p in model.defaults
    }
    parts = []
    for s, rhs in model.rhs.items():
        if metrics._kinematic(s, rhs):
            continue
        value = cast(sp.Expr, rhs.subs(values))  # SymPy types `subs` as returning `Basic`
        parts.append(f"d{metrics.state_name(s)}/dt = {round_floats(value, 3)}")
    return "; ".join(parts)


def run_one(problem: Problem, method: Any, noise: float, seed: int) -> tuple[dict, dict]:
    """One benchmark run; returns ``(row, predictions)``. Errors become rows, never exceptions."""

    name = method_name(method)
    row: dict[str, Any] = {c: math.nan for c in COLUMNS}
    row.update(problem=problem.name, method=name, noise=float(noise), seed=int(seed), equations="", note="")
    row.update(error="", status="ok", failed=False)
    preds: dict[str, Any] = {}
    t_start = time.perf_counter()
    try:
        problem = problem.for_seed(int(seed))
        t0 = time.perf_counter()
        data = Dataset.from_model(
            problem.model, ics=dict(problem.ics), ts=problem.times, noise=float(noise), seed=int(seed),
            observe=list(problem.observe),
        )  # fmt: skip
        row["time_data"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        outcome = _model_of(method(problem, data, int(seed)))
        row["time_method"] = time.perf_counter() - t0
        for stage, secs in outcome.stages.items():
            if stage in STAGES:
                row[f"time_{stage}"] = float(secs)
        model = outcome.model
        symbolic = outcome.symbolic if outcome.symbolic is not None else not model.neural
        row["n_params"] = outcome.n_params if outcome.n_params is not None else parameter_count(model)
        row["note"] = outcome.note
        t0 = time.perf_counter()
        scores, preds = metrics.score(problem, model)
        row.update(scores)
        if symbolic and not model.neural:
            row.update(metrics.structure(problem.model, model))
            row["equations"] = _equations(model)
        row["time_score"] = time.perf_counter() - t0
        row["failed"] = any(row[f"failed_{w}"] for w in metrics.WINDOWS)
        row["status"] = "failed" if row["failed"] else "ok"
        preds["data_t"] = np.asarray(data.t, dtype=float)
        preds["data_y"] = np.stack([np.asarray(data[k], dtype=float) for k in problem.observe], axis=1)
        preds["observe"] = np.array(problem.observe)
        preds["t_split"] = np.asarray(problem.train[1])
    except Exception as err:  # a method that raises is a failed run, recorded with its reason
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        row.update(status="error", failed=True, error=f"{type(err).__name__}: {msg}")
        for w in metrics.WINDOWS:
            row[f"r2_{w}"], row[f"rmse_{w}"], row[f"failed_{w}"] = -math.inf, math.inf, True
        if os.environ.get("SYMML_DEBUG"):
            traceback.print_exc()
    row["time_total"] = time.perf_counter() - t_start
    return row, preds


def _key(problem: str, method: str, noise: float, seed: int) -> tuple:
    return (str(problem), str(method), round(float(noise), 12), int(seed))


def _save_predictions(out: Path, row: dict, preds: dict) -> None:
    if not preds:
        return
    folder = out / "predictions"
    arrays = {k: v for k, v in preds.items() if v is not None}
    name = f"{row['problem']}__{row['method']}__{row['noise']:g}__{row['seed']}.npz"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / name, **arrays)
    except OSError as err:
        raise BenchError(
            f"Cannot write {folder / name}: {err.strerror or err}. The rows in results.csv are kept; "
            "free space and run the same command again to resume."
        ) from None


def _work(task: tuple) -> tuple[dict, dict]:
    """Worker entry point (module level so that spawned processes and Dask workers import it)."""
    problem, method, noise, seed = task
    if isinstance(problem, str):
        problem = get_problem(problem)
    elif isinstance(problem, dict):
        problem = _decoded(problem)
    return run_one(problem, method, noise, seed)


# Problems a worker process has rebuilt from their encoding, by name: the next run of the same
# problem gets the same Model object, so the compiled solves cached on it (the one cache,
# `artefact`) are reused instead of compiled again for every run. A few entries: one per problem.
_DECODED: dict[str, tuple[dict, Problem]] = {}


def _decoded(d: dict) -> Problem:
    hit = _DECODED.get(d["name"])
    try:
        same = hit is not None and bool(hit[0] == d)
    except Exception:  # a library object whose == is not a plain bool: rebuild, to be safe
        same = False
    if same and hit is not None:
        return hit[1]
    problem = decode_problem(d)
    if len(_DECODED) >= 16:
        _DECODED.pop(next(iter(_DECODED)))
    _DECODED[d["name"]] = (d, problem)
    return problem


def encode_problem(p: Problem) -> dict:
    """``p`` as a dict whose models are their JSON text (the `symml.save` format).

    A `symml.Model` is not picklable; its JSON encoding is, and it is rebuilt on the worker
    from a whitelist of nodes, never executed.
    """

    d = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    d["model"] = json.dumps(to_json_dict(p.model))
    d["ude"] = None if p.ude is None else json.dumps(to_json_dict(p.ude))
    d["ics"], d["new_ics"] = dict(p.ics), dict(p.new_ics)
    return d


def _encoded_or_none(p: Problem) -> dict | None:
    try:
        return encode_problem(p)
    except (SymmlError, TypeError):  # e.g. a function outside the save whitelist: run as is
        return None


def decode_problem(d: dict) -> Problem:
    """The `Problem` that `encode_problem` wrote."""

    d = dict(d)
    d["model"] = from_json_dict(json.loads(d["model"]))
    d["ude"] = None if d["ude"] is None else from_json_dict(json.loads(d["ude"]))
    return Problem(**d)


# ----------------------------------------------------------------------------- the grid


def _check_noise(noise: Any) -> tuple[float, ...]:
    values: list[Any] = [noise] if np.isscalar(noise) else list(noise)
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise BenchError(f"noise levels must be numbers >= 0; got {v!r} in {noise!r}.") from None
        if not math.isfinite(f) or f < 0:
            raise BenchError(f"noise levels must be finite numbers >= 0 (0.05 = 5 %); got {v!r}.")
        out.append(f)
    if not out:
        raise BenchError("noise is empty; give at least one level, e.g. noise=[0, 0.05].")
    return tuple(dict.fromkeys(out))


def _check_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise BenchError(f"seeds must be a count or a list of integers; got {seeds!r}.")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise BenchError(f"seeds as a count must be at least 1; got {seeds!r}.")
        return tuple(range(int(seeds)))
    try:
        values = list(seeds)
    except TypeError:
        raise BenchError(f"seeds must be a count or a list of integers; got {seeds!r}.") from None
    out = []
    for s in values:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise BenchError(f"seeds must be integers >= 0; got {s!r} in {seeds!r}.")
        out.append(int(s))
    if not out:
        raise BenchError("seeds is empty; give a count (e.g. 3) or a list (e.g. [0, 1]).")
    return tuple(dict.fromkeys(out))


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:
        return False


def run(
    problems: Sequence[Any] | None = None,
    methods: Sequence[Any] | None = None,
    noise: Any = (0.0,),
    seeds: Any = 1,
    *,
    out: str | os.PathLike = "symml-bench",
    jobs: int | None = None,
    scheduler: Any = None,
    retries: int = 2,
    report: bool = True,
    verbose: bool = True,
) -> pd.DataFrame:
    """Run the benchmark grid and write ``results.csv``, ``results.json`` and ``report.md``.

    Rows are appended to ``results.csv`` (one fsync'ed write each) as runs finish, wherever
    they ran; rows already there are not run again, and a torn last row left by a killed run is
    cut off and run again. Ctrl-C stops within seconds and keeps the finished rows.

    Args:
        problems: names (see `symml.bench.problems`) or `Problem` objects;
            default: every built-in problem.
        methods: names (see `symml.bench.methods`), method instances (e.g.
            ``UdeSindy(steps=300)``) or callables ``(problem, data, seed) -> Model``;
            default: ``true_form``, ``sindy``, ``ude_sindy``, ``neural_ode``.
        noise: relative noise levels (0.05 = 5 % of each state's mean magnitude).
        seeds: a count (``3`` = seeds 0, 1, 2) or a list of seeds.
        out: output folder (created). Rows already in ``out/results.csv`` are not run again.
        jobs: worker processes (default: CPU count; 1 runs everything in this process); with
            ``scheduler="local"`` the number of Dask workers.
        scheduler: None (this process or a local process pool; Dask is not needed), ``"local"``
            (an embedded Dask cluster), the address of a running Dask scheduler
            (``"tcp://host:8786"``) or a ``dask.distributed.Client``. Dask's transport is
            pickle-based: use only a cluster you trust.
        retries: with Dask, how many times a task that raised is run again (a task whose
            worker died is always re-run elsewhere by the scheduler).
        report: write ``report.md`` and its figures.
        verbose: show a progress bar.

    Returns:
        A pandas DataFrame with every row of ``results.csv`` (earlier runs included).

    Raises:
        BenchError: no problem or no method, an unknown name, bad noise levels or seeds,
            ``jobs < 1``, a bad ``scheduler`` (or Dask not installed), an output folder that
            cannot be written (checked before any run), or runs lost to dying workers.
    """

    plist = [get_problem(p) for p in (problems if problems is not None else _default_problems())]
    mlist = [get_method(m) for m in (methods if methods is not None else _DEFAULT_METHODS)]
    if not plist or not mlist:
        raise BenchError("Give at least one problem and one method.")
    levels, seed_list = _check_noise(noise), _check_seeds(seeds)
    jobs = (os.cpu_count() or 1) if jobs is None else int(jobs)
    if jobs < 1:
        raise BenchError(f"jobs must be at least 1; got {jobs}.")
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise BenchError(f"retries must be an integer >= 0; got {retries!r}.")
    check_scheduler(scheduler)
    out = Path(out)
    check_writable(out)  # before any work: a read-only or full folder fails now, not after hours
    csv_path = out / "results.csv"
    torn = repair(csv_path)
    if torn:
        warnings.warn(
            f"{csv_path} ended in a torn row ({torn} bytes, an interrupted write); it was cut off and "
            "that run is done again.",
            BenchWarning,
            stacklevel=2,
        )
    done = {_key(r["problem"], r["method"], r["noise"], r["seed"]) for r in read_rows(csv_path)}
    todo = []
    for p in plist:
        for m in mlist:
            for n in levels:
                for s in seed_list:
                    k = _key(p.name, method_name(m), n, s)
                    if k not in done:
                        done.add(k)  # a grid that names a run twice runs it once
                        todo.append((p, m, n, s))
    # Every executor, this process included, runs a user problem rebuilt from its JSON encoding:
    # the rebuilt Model can order its terms differently from the original, and a different order
    # changes the last bits of a solve, so the numbers only match across executors this way.
    encoded = {id(p): p.name if is_builtin(p.name) else _encoded_or_none(p) for p in plist}
    tasks: list[tuple] = [(encoded[id(p)] or p, m, n, s) for p, m, n, s in todo]
    if scheduler is not None and any(encoded[id(p)] is None for p in plist):
        bad = [p.name for p in plist if encoded[id(p)] is None]
        raise BenchError(
            f"problems {bad} cannot be encoded as JSON (sm.save) to travel to Dask workers; leave "
            "scheduler unset to run them locally."
        )
    if scheduler is not None or (jobs > 1 and len(todo) > 1):
        if scheduler is None and not all(_picklable(t) for t in tasks):
            warnings.warn(
                "Some methods or problems cannot be sent to worker processes (e.g. a lambda); running "
                "in this process (jobs=1). Define them at module level to use --jobs.",
                BenchWarning,
                stacklevel=2,
            )
            jobs = 1
    from tqdm.auto import tqdm

    executor = make_executor(scheduler, jobs, int(retries), len(todo)) if todo else InProcess()
    bar = tqdm(total=len(todo), desc="symml bench", unit="run", disable=not verbose or not todo)
    written: set[tuple] = set()
    try:
        for _, (row, preds) in executor.map(_work, tasks):
            k = _key(row["problem"], row["method"], row["noise"], row["seed"])
            if k in written:  # never write a run twice, whatever the executor hands back
                continue
            append_row(csv_path, row)
            written.add(k)
            _save_predictions(out, row, preds)
            bar.set_postfix_str(f"{row['problem']}/{row['method']}/noise={row['noise']:g}/seed={row['seed']}")
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"symml bench: interrupted; {len(written)} finished runs of this call are kept in {csv_path} "
            "(run the same command again to resume)",
            file=sys.stderr,
        )
        raise
    finally:
        bar.close()
        executor.close()
    return write_outputs(out, report=report)


def _default_problems() -> tuple[str, ...]:

    # the fixed-initial-value problems; lotka_volterra_sparse is the ude-robustness preset's
    return tuple(p for p in _BUILTIN if p != "lotka_volterra_sparse")


_DEFAULT_METHODS = ("true_form", "sindy", "ude_sindy", "neural_ode")
