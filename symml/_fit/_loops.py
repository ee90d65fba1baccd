"""Compiled optimiser loops that record the loss history, shared by `symml.fit`.

`iterate_optimistix` runs an optimistix solver (Levenberg–Marquardt, BFGS, ...) step by
step inside one ``lax.while_loop`` and keeps the best loss after every step; `iterate_optax`
does the same for optax gradient transformations. Both stop on their own tests or when the loss
stalls, and report convergence instead of raising. `finite_tangent` guards Jacobians
against observables that are not differentiable at some samples.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import optimistix as optx

__all__ = [
    "ConvergenceWarning",
    "iterate_optimistix",
    "iterate_optax",
    "finite_tangent",
    "STALL",
    "OPTAX_WINDOW",
]


class ConvergenceWarning(UserWarning):
    """An iterative estimate stopped before meeting its tolerance."""


#: Steps over which a stalled loss ends an optimisation (see `iterate_optimistix`).
STALL = 10
#: Window of the optax stopping rule (see `iterate_optax`).
OPTAX_WINDOW = 100


@jax.custom_jvp
def finite_tangent(x):
    """Identity whose derivative drops non-finite entries: an observable that is not
    differentiable at some sample (``sqrt(a² + b²)`` at a = b = 0) then adds a zero row to the
    Jacobian there instead of turning every step into NaN."""
    return x


@finite_tangent.defjvp
def _finite_tangent_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return x, jnp.where(jnp.isfinite(dx), dx, 0.0)


def iterate_optimistix(solver, fn, z0, args, options, max_iter, size, tol, verbose):
    """optimistix's loop, keeping the best loss after every step (the loss history).

    Besides the solver's own test, the loop stops (converged) when the best loss improved by
    less than ``tol`` (relative) over the last ``STALL`` steps: an optimum on a bound, where
    the transformed unknown keeps moving while nothing changes, then ends cleanly."""
    tags = frozenset()
    f_struct, aux_struct = jax.eval_shape(lambda: fn(z0, args))
    state = solver.init(fn, z0, args, options, f_struct, aux_struct, tags)
    dyn, static = eqx.partition(state, eqx.is_array)
    ok = optx.RESULTS.successful
    hist = jnp.full((size,), jnp.nan, z0.dtype)

    def cond(c):
        return jnp.invert(c[5]) & (c[6] == ok) & (c[1] < max_iter)

    def body(c):
        z, i, dyn, best, hist, _, _ = c
        st = eqx.combine(static, dyn)
        z, st, aux = solver.step(fn, z, args, options, st, tags)
        # the loss at the accepted point (the aux returned by a step lags one step behind);
        # as_min() is ½‖r‖² for least squares and f = ½‖r‖² for fit's minimisation objective
        loss = 2 * st.f_info.as_min() if hasattr(st, "f_info") else aux[0]
        term, res = solver.terminate(fn, z, args, options, st, tags)
        res = optx.RESULTS.where(jnp.all(jnp.isfinite(z)), res, optx.RESULTS.nonfinite)
        best = jnp.where(jnp.isfinite(loss) & (loss < best), loss, best)
        if verbose:
            jax.debug.print("fit: step {i}  loss {l:.6e}", i=i + 1, l=best)
        hist = hist.at[jnp.minimum(i, size - 1)].set(best)
        before = hist[jnp.clip(i - STALL, 0, size - 1)]
        stalled = (i >= STALL) & jnp.isfinite(best) & (before - best <= tol * best)
        return z, i + 1, eqx.partition(st, eqx.is_array)[0], best, hist, term | stalled, res

    init = (z0, jnp.array(0), dyn, jnp.array(jnp.inf, z0.dtype), hist, jnp.array(False), ok)
    z, n, dyn, _, hist, term, res = jax.lax.while_loop(cond, body, init)
    converged = term & (res == ok)
    return z, n, converged, res._value, hist, eqx.combine(static, dyn)


def iterate_optax(opt, loss_fn, z0, args, max_iter, size, tol, mode, verbose):
    """Gradient steps with an optax optimiser; stops when the best loss improved by less than
    ``tol`` (relative) over the last ``OPTAX_WINDOW`` steps."""

    def grad_fn(z):
        if mode == "fwd":
            return jax.jacfwd(lambda zz: loss_fn(zz, args)[0])(z), loss_fn(z, args)[1]
        (_, rss), g = jax.value_and_grad(lambda zz: loss_fn(zz, args), has_aux=True)(z)
        return g, rss

    def cond(c):
        i, stop = c[4], c[6]
        return jnp.invert(stop) & (i < max_iter)

    def body(c):
        z, st, best, best_z, i, hist, _ = c
        g, rss = grad_fn(z)
        better = jnp.isfinite(rss) & (rss < best)
        best_z = jnp.where(better, z, best_z)
        best = jnp.where(better, rss, best)
        hist = hist.at[jnp.minimum(i, size - 1)].set(best)
        before = hist[jnp.clip(i - OPTAX_WINDOW, 0, size - 1)]
        stop = (i >= OPTAX_WINDOW) & (before - best <= tol * best)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        upd, st = opt.update(g, st, z)
        if verbose:
            jax.debug.print("fit: step {i}  loss {l:.6e}", i=i + 1, l=best)
        return optax.apply_updates(z, upd), st, best, best_z, i + 1, hist, stop

    hist = jnp.full((size,), jnp.nan, z0.dtype)
    init = (z0, opt.init(z0), jnp.array(jnp.inf, z0.dtype), z0, jnp.array(0), hist, jnp.array(False))
    _, _, _, best_z, n, hist, stop = jax.lax.while_loop(cond, body, init)
    return best_z, n, stop, jnp.where(stop, 0, 1), hist
