"""`Rodas4`: a Rosenbrock method for stiff problems, with the Jacobian as dense blocks.

A Rosenbrock method linearises each step instead of iterating Newton's method: with the
Jacobian ``J`` of the vector field at the start of the step it solves, per stage, one linear
system with the matrix ``M = I / (γh) - J``, factored once per step. On small stiff systems this
is much cheaper than the Newton iterations of an implicit Runge–Kutta method (Kvaerno5), whose
per-step cost on CPU is dominated by the iteration's control flow. `Rodas4` is Hairer &
Wanner's RODAS (*Solving ODEs II*, VI.4; the coefficient set of their code ``rodas.f``, also
OrdinaryDiffEq.jl's ``Rodas4``): six stages, order 4 with an embedded order-3 estimate,
stiffly accurate and L-stable, with a third-order dense output that needs no extra evaluation.

Jacobians come from `symml._compile._jacobian.BlockJacobian`: symml compiles the exact symbolic
Jacobian of a model, and where its sparsity graph falls into ``G`` disconnected groups of ``b``
states each (``N`` copies of a small kinetic network, say) the matrix is kept and factored as
``G`` dense ``b × b`` blocks, so a step costs ``O(G b³)`` instead of ``O((G b)³)``. Without a
`BlockJacobian` the solver differentiates the vector field with ``jax.jacfwd`` (one dense
block), so ``Rodas4()`` works as a plain diffrax solver too.

>>> import diffrax, jax.numpy as jnp
>>> term = diffrax.ODETerm(lambda t, y, a: jnp.stack([-1e4 * (y[0] - jnp.cos(t)), y[0]]))
>>> sol = diffrax.diffeqsolve(term, Rodas4(), 0.0, 1.0, None, jnp.array([0.0, 0.0]),
...     stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-9))
>>> round(float(sol.ys[-1, 1]), 3), int(sol.stats["num_steps"]) < 100  # y0 ≈ cos t, y1 ≈ sin t
(0.841, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .._compile._jacobian import BlockJacobian

__all__ = ["Rodas4", "RodasInterpolation", "RODAS4"]


class _Tableau:
    """Coefficients of a Rosenbrock method in Hairer's form (``k`` in units of ``y``).

    Stage ``i`` evaluates ``f`` at ``t0 + c[i] h`` and ``y0 + Σ_j a[i, j] k_j`` and solves
    ``(I / (γh) - J) k_i = f + h d[i] ∂f/∂t + Σ_j (C[i, j] / h) k_j``; the step ends at
    ``y0 + Σ_j b[j] k_j``, ``k_last`` is the error estimate, and the dense output is
    ``(1 - θ) y0 + θ (y1 + (1 - θ)(K1 + θ K2))`` with ``K = h_dense @ k``.
    """

    def __init__(self, gamma, a, C, c, d, b, h_dense, order):
        self.gamma = float(gamma)
        self.a = np.asarray(a, dtype=float)
        self.C = np.asarray(C, dtype=float)
        self.c = np.asarray(c, dtype=float)
        self.d = np.asarray(d, dtype=float)
        self.b = np.asarray(b, dtype=float)
        self.h_dense = np.asarray(h_dense, dtype=float)
        self.order = order


def _rodas4() -> _Tableau:
    a5 = [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950]
    a = np.zeros((6, 6))
    a[1, :1] = [1.544]
    a[2, :2] = [0.9466785280815826, 0.2557011698983284]
    a[3, :3] = [3.314825187068521, 2.896124015972201, 0.9986419139977817]
    a[4, :4] = a5
    a[5, :5] = [*a5, 1.0]  # stiffly accurate: stage 6 starts from stage 5's input plus k5
    C = np.zeros((6, 6))
    C[1, :1] = [-5.6688]
    C[2, :2] = [-2.430093356833875, -0.2063599157091915]
    C[3, :3] = [-0.1073529058151375, -9.594562251023355, -20.47028614809616]
    C[4, :4] = [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160]
    C[5, :5] = [
        *(8.083246795921522, -7.981132988064893, -31.52159432874371),
        *(16.31930543123136, -6.058818238834054),
    ]
    h_dense = [  # the dense output's two combinations of k1..k5
        [10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823, 1.025137723295662, 0],
        [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386, -6.594389125716872, 0],
    ]
    return _Tableau(
        gamma=0.25,
        a=a,
        C=C,
        c=[0.0, 0.386, 0.21, 0.63, 1.0, 1.0],
        d=[0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0],
        b=[*a5, 1.0, 1.0],
        h_dense=h_dense,
        order=4,
    )


#: Hairer & Wanner's RODAS coefficients (order 4(3), six stages).
RODAS4 = _rodas4()


class RodasInterpolation(diffrax.AbstractLocalInterpolation):
    """Rodas's third-order dense output over one step (no extra evaluation of ``f``)."""

    t0: Any
    t1: Any
    y0: jax.Array
    y1: jax.Array
    k: jax.Array  # (2, n): the two dense-output combinations of the stages

    def evaluate(self, t0: Any, t1: Any = None, left: bool = True) -> jax.Array:
        del left
        if t1 is not None:
            return self.evaluate(t1) - self.evaluate(t0)
        theta = (t0 - self.t0) / jnp.where(self.t1 == self.t0, 1.0, self.t1 - self.t0)
        return (1 - theta) * self.y0 + theta * (self.y1 + (1 - theta) * (self.k[0] + theta * self.k[1]))


def _lu(m: jax.Array):
    lu, _, perm = jax.lax.linalg.lu(m)
    return lu, perm


def _lu_solve(lu: jax.Array, perm: jax.Array, rhs: jax.Array) -> jax.Array:
    x = jnp.take_along_axis(rhs, perm, axis=-1)[..., None]
    x = jax.lax.linalg.triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True)
    return jax.lax.linalg.triangular_solve(lu, x, left_side=True, lower=False)[..., 0]


class Rodas4(diffrax.AbstractAdaptiveSolver):
    """Hairer & Wanner's RODAS: a stiffly accurate, L-stable Rosenbrock method of order 4(3).

    ODEs only (``y`` a 1-D array). Build with a `BlockJacobian` to use an exact (symbolic)
    Jacobian and its block structure; without one, ``jax.jacfwd`` of the vector field is used.

    Attributes:
        jacobian: a `BlockJacobian`, or ``None`` for ``jax.jacfwd``.
    """

    jacobian: BlockJacobian | None = None

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., RodasInterpolation]] = RodasInterpolation
    tableau: ClassVar[_Tableau] = RODAS4

    def order(self, terms):
        return self.tableau.order

    def error_order(self, terms):
        return self.tableau.order

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        tab = self.tableau
        dtype = jnp.result_type(y0.dtype, float)
        dt = t1 - t0  # in diffrax's time, which runs backwards for t1 < t0 of the user ...
        h = terms.contr(t0, t1)  # ... and the real step, with its sign
        sign = jnp.where(h * dt < 0, -1.0, 1.0).astype(dtype)
        t_real = sign * t0

        def f(c):
            return lambda y: terms.vf(t0 + c * dt, y, args)

        jac = self.jacobian
        if jac is None:
            dense = jax.jacfwd(f(0.0))(y0)
            blocks = dense[None]
            ft = sign * jax.jvp(lambda s: terms.vf(s, y0, args), (t0,), (jnp.ones_like(t0),))[1]

            def gather(v):
                return v[None]

            def scatter(v):
                return v[0]
        else:
            blocks = jac.matrix(t_real, y0, args)
            gather, scatter = jac.gather, jac.scatter
            if jac.time_dependent:
                ft = sign * jax.jvp(lambda s: terms.vf(s, y0, args), (t0,), (jnp.ones_like(t0),))[1]
            else:
                ft = None
        n_b = blocks.shape[-1]
        m = jnp.eye(n_b, dtype=dtype)[None] / (tab.gamma * h) - blocks
        lu, perm = _lu(m)
        ks: list[jax.Array] = []
        f0 = f(0.0)(y0)
        for i in range(len(tab.c)):
            if i == 0:
                fi = f0
            else:
                yi = y0 + sum(tab.a[i, j] * ks[j] for j in range(i) if tab.a[i, j] != 0.0)
                fi = f(tab.c[i])(yi)
            rhs = fi
            if ft is not None and tab.d[i] != 0.0:
                rhs = rhs + (h * tab.d[i]) * ft
            coupling = [(tab.C[i, j], ks[j]) for j in range(i) if tab.C[i, j] != 0.0]
            if coupling:
                rhs = rhs + sum(cij * kj for cij, kj in coupling) / h
            ks.append(scatter(_lu_solve(lu, perm, gather(rhs))))
        y1 = y0 + sum(bj * kj for bj, kj in zip(tab.b, ks) if bj != 0.0)
        k = jnp.stack([sum(hj * kj for hj, kj in zip(row, ks) if hj != 0.0) for row in tab.h_dense])
        dense_info = dict(y0=y0, y1=y1, k=k)
        return y1, ks[-1], dense_info, None, diffrax.RESULTS.successful
