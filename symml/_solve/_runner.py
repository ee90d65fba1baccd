"""The compiled runner behind `symml.simulate`, and the Trajectory it fills in.

A runner is one ``jax.jit`` function per (model, solver, tolerances, event, adjoint, save
count, stiffness detection), kept in the artefact cache (kind ``"runner"``). Everything that
depends on the configuration is fixed inside; initial values, parameters, the time span, save
times and ``dt0`` are its arguments, so new values never recompile. Two argument layouts:

* ``run(nets, vec, None, None, ts, dt0)``: ``vec = [y0..., p..., t0, t1]``, one host array, the
  layout of a single solve with plain numbers: one transfer to the device.
* ``run(nets, y0, p, span, ts, dt0)``: ``y0`` is ``batch + (n_states,)``, ``p`` is
  ``batch + (n_params,)`` (ensembles, traced values under ``jax.grad``).

It returns ``(ys, event_time, event_state, ts, p, status)`` with ``status`` =
``batch + (3,)``: diffrax's result code, the stiffness time (``inf``: not stiff, or not
detected) and the number of steps, so that one read from the device tells the caller whether
the solve succeeded and whether to switch solvers. In the packed layout ``p`` is read from
``vec`` on the host (a copy), not returned by the compiled solve.

>>> import numpy as np, symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> run = make_runner(lv, "tsit5", False, 1e-7, 1e-9, 4096, None, None, 3, {}, False)
>>> vec = np.array([1.0, 1.0, 1.3, 0.9, 1.8, 0.8, 0.0, 1.0])  # y0, p, t0, t1
>>> ys, _, _, ts, p, status = run({}, vec, None, None, None, None)
>>> ys.shape, ts.tolist(), p.tolist(), status.tolist()
((3, 2), [0.0, 0.5, 1.0], [1.3, 0.9, 1.8, 0.8], [0.0, inf, 13.0])
"""

from __future__ import annotations

import dataclasses
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._compile._codegen import CompiledFunction, CompiledModel, compile_exprs, rhs_program
from .._compile._jacobian import block_jacobian
from .._trajectory import Trajectory
from ._core import integrate
from ._options import DEFAULT_ADJOINT, SolveOptions, TerminalEvent, get_solver
from ._rosenbrock import Rodas4

__all__ = ["make_runner", "new_trajectory"]


def make_runner(
    model: Any,
    slv_key: Any,
    fixed: bool,
    rtol: float,
    atol: float,
    max_steps: int,
    event: Any,
    adjoint: Any,
    n_save: int | None,
    net_static: Any,
    detect: bool,
    span: tuple[float, float] | None = None,
):
    """The jitted runner of ``model`` for this configuration (see the module docstring).

    ``span``: ``(t0, t1)`` as constants of the compiled solve (the runner then ignores the span
    it is passed); ``None``: the span is an argument, so that a new span never recompiles.

    The runner lives in the artefact cache under the model, so it must not hold the model (a
    value that references its key would keep the model alive): it closes over what it compiled.
    """
    program = rhs_program(model)
    event_prog = compile_exprs(model, [event.expr], title="event").program if event is not None else None
    rising = event.rising if event is not None else None
    solver = get_solver(slv_key)
    if isinstance(solver, Rodas4) and solver.jacobian is None and not model.neural:
        solver = Rodas4(jacobian=block_jacobian(model))  # the exact Jacobian, in its blocks
    controller = diffrax.ConstantStepSize() if fixed else diffrax.PIDController(rtol=rtol, atol=atol)
    adjoint = adjoint if adjoint is not None else DEFAULT_ADJOINT
    dtype = jnp.result_type(float)
    states, params = tuple(model.states), tuple(model.params)
    ny, npar = len(states), len(params)
    # Explicit adaptive solvers only: fixed steps (and the symplectic solvers, which read the
    # vector field's program) keep t, and implicit solvers converge their Newton iterations on
    # the stage derivatives, which the rescaling multiplies (Kvaerno5 on Van der Pol mu = 1000
    # took 9458 steps instead of 3469).
    # Terminal events keep t too: their root is located to the root finder's tolerance in the
    # solver's time, which rescaling would stretch by the span (examples/projectile.py's ranges
    # then differ from the closed form by more than 1e-6).
    # A span known while tracing needs no rescaling: the solve is then the one a user writes
    # with constants (bit for bit). The runner that takes the span as an argument solves in
    # normalised time and agrees with it to rounding (~1e-12 after 50 steps), not bit for bit.
    rescale = (
        RESCALE
        and span is None
        and not fixed
        and event is None
        and isinstance(slv_key, str)
        and slv_key in _RESCALED
    )

    # Why a span baked in at all (``span`` given): diffrax with the span traced costs 10-15 % more
    # per solve than with constants (the Brusselator, 222 steps: a hand-written solve taking the
    # span as an argument 0.31 ms against 0.27 ms, interleaved; this runner in normalised time
    # was as slow), and `make_plan` bakes only a span that the configuration has not yet seen
    # change, so a sweep over spans compiles once more, not once per span.
    baked = None if span is None else (float(span[0]), float(span[1]))
    # the save grid on the host, a trace-time constant: numpy's linspace, the times a caller gets
    # by passing saveat=np.linspace(t0, t1, n) (jnp.linspace here compiled a kernel: 30 ms)
    baked_ts = None if baked is None else np.linspace(*baked, int(n_save or 1)).astype(dtype)

    def run(net_arrays, y0, p, span, ts, dt0):
        nets = eqx.combine(net_arrays, net_static)
        packed = p is None
        if packed:  # the packed layout of one solve: [y0..., p..., t0, t1]
            vec = jnp.asarray(y0, dtype)
            y0, p, span = vec[:ny], vec[ny : ny + npar], vec[ny + npar :]
        else:
            y0, p, span = (jnp.asarray(a, dtype) for a in (y0, p, span))
        if baked is not None:
            t0, t1 = baked
        else:
            t0, t1 = span[0], span[1]
        count_only = ts is None  # saveat was a number of samples
        if not count_only:
            ts_out = ts
        elif baked_ts is not None:
            ts, ts_out = baked_ts, None  # the host grid, handed out by `runner` below
        else:
            ts = ts_out = jnp.linspace(t0, t1, int(n_save or 1), dtype=dtype)
        vf = CompiledModel(nets, program, states, params)
        cond = CompiledFunction(nets, event_prog, states, params) if event_prog is not None else None
        if rescale:
            # Solve in tau = (t - t0) / (t1 - t0) over the constant span [0, 1]: diffrax with a
            # traced span costs about 18 % more per step (measured on the Brusselator) than
            # with constants, and the span must stay traced so that new spans never recompile.
            # The controller sees the same steps, scaled; results agree to rounding.
            length = jnp.where(t1 == t0, jnp.ones_like(t1), t1 - t0)
            vf = Rescaled(vf, t0, length)
            cond = Rescaled(cond, t0, length, scale_output=False) if cond is not None else None
            # The span and a count of save times as constants known while tracing (numpy and
            # Python numbers, not jnp arrays, which are traced): diffrax then checks the save
            # times against the span at trace time instead of compiling the check (two host
            # callbacks under conditionals, 0.3 s more compile on a 2000-state chain).
            unit = np.linspace(0.0, 1.0, int(n_save or 1)).astype(dtype)
            tau: Any = unit if count_only else (ts - t0) / length
            a, b = 0.0, 1.0
            # The first step diffrax takes in real time, in tau: diffrax 0.7 wraps the term before
            # its first-step heuristic, which then returns its fallback 0.01 for every ODE (the
            # heuristic is dead code there). Choosing 0.01 / |length| gives the steps the same
            # solve takes in real time (with the span baked in, or hand-written), agreeing with
            # it to rounding; the heuristic applied in tau took 226 steps on the Brusselator
            # where real time takes 222, and applied in real time it left the two 1e-8 apart.
            dt0 = DIFFRAX_FIRST_STEP / jnp.abs(length) if dt0 is None else dt0 / length
        else:
            length, tau, a, b = None, ts, t0, t1
        ev = TerminalEvent(cond, direction=rising) if cond is not None else None

        def one(y0_, p_):
            options = SolveOptions(solver, controller, adjoint, max_steps, dt0, ev, detect)
            return integrate(vf, y0_, tau, p_, options, t0=a, t1=b)

        out = jax.vmap(one)(y0, p) if y0.ndim > 1 else one(y0, p)
        stiff = out.stiff_time if out.stiff_time is not None else jnp.full(out.result.shape, jnp.inf, dtype)
        ev_t = out.event_time
        if length is not None:
            stiff = t0 + stiff * length
            ev_t = None if ev_t is None else t0 + ev_t * length
        # Why one small array for the host to read, and no outputs it already has: every output
        # of a jitted call costs about 1 us to dispatch and again to free (3 of them: ~1 % of a
        # 0.3 ms solve, 15 % of a tiny one).
        info = [out.result.astype(dtype), stiff.astype(dtype), out.num_steps.astype(dtype)]
        status = jnp.stack(info, -1)
        return out.ys, ev_t, out.event_state, ts_out, None if packed else p, status

    jitted = jax.jit(run)
    # A constant returned by a jitted function is made into a new device array on every call
    # (37 us for the 100 save times of the Brusselator, 14 % of its solve): the baked grid is
    # put on the device once and handed out with every result (jax arrays are immutable).
    grid = None if baked_ts is None else jax.device_put(baked_ts)  # jnp.asarray compiles a copy

    def runner(net_arrays, y0, p, span, ts, dt0):
        ys, ev_t, ev_y, ts_out, p_out, status = jitted(net_arrays, y0, p, span, ts, dt0)
        if ts_out is None:
            ts_out = grid
        if p_out is None:  # the packed layout: the parameters as given, copied off ``vec``
            p_out = np.array(y0[ny : ny + npar], dtype=dtype)
        return ys, ev_t, ev_y, ts_out, p_out, status

    return runner


#: Solve with explicit adaptive solvers in normalised time (see `make_runner`).
RESCALE = True
_RESCALED = ("tsit5", "dopri5", "dopri8", "bosh3")
#: The first step diffrax's adaptive solves take in real time when given none (see `make_runner`).
DIFFRAX_FIRST_STEP = 0.01


class Rescaled(eqx.Module):
    """``f`` in the time ``tau = (t - t0) / length``: ``length * f(t0 + tau * length, y, p)``."""

    fn: Any
    t0: Any
    length: Any
    scale_output: bool = eqx.field(static=True, default=True)

    def __call__(self, tau, y, p):
        out = self.fn(self.t0 + tau * self.length, y, p)
        return self.length * out if self.scale_output else out


def new_trajectory(
    t: Any,
    y: Any,
    p: Any,
    event_time: Any,
    event_state: Any,
    num_steps: Any,
    networks: dict,
    model: Any,
    solver: str | None,
    solver_reason: str | None,
) -> Trajectory:
    """A numeric `Trajectory`, built without equinox's checked ``__init__``.

    ``Trajectory(...)`` costs about 60 µs (equinox walks every field looking for misplaced
    arrays and runs its init checks): a third of a small solve. The fields here come from the
    runner, so they are known to be right; this sets them as equinox's own unflatten does.
    """
    traj = object.__new__(Trajectory)
    # equinox unflattens into the instance dict the same way; read without the Module's own
    # __getattribute__ (a Python method: 0.6 us of the 1.4 us this took through vars())
    values = object.__getattribute__(traj, "__dict__")
    values.update(_DEFAULTS)
    values.update(
        t=t,
        y=y,
        p=p,
        event_time=event_time,
        event_state=event_state,
        num_steps=num_steps,
        networks=networks,
        model=model,
        method="numeric",
        solver=solver,
        solver_reason=solver_reason,
    )
    for name, factory in _FACTORIES:
        if name not in values:
            values[name] = factory()
    return traj


# The defaults of every Trajectory field, read once (a field added there later gets its default
# here); fields with a default factory get a fresh value per Trajectory.
_DEFAULTS = {
    f.name: None if f.default is dataclasses.MISSING else f.default
    for f in dataclasses.fields(Trajectory)
    if f.default_factory is dataclasses.MISSING
}
_FACTORIES = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(Trajectory)
    if f.default_factory is not dataclasses.MISSING
)
