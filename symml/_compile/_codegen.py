"""SymPy -> JAX through one explicit mapping table.

Expressions are turned into a *program* (`symml._compile._program.Program`): a list of
instructions, each one entry of the table `symml._compile._functions.FUNCTIONS` (or an
arithmetic operator) applied to earlier results, after SymPy's common-subexpression
elimination. The program is interpreted while JAX traces it, so the jitted function contains
exactly the operations listed and nothing else; no source text is ever executed. ``source``
renders the same program as readable Python for inspection.

Programs are built once per model and expression list and kept in the artefact cache
(`symml._compile._cache`), never on the Model.

>>> import sympy as sp, symml as sm
>>> x, = sm.states("x"); k, = sm.parameters("k")
>>> f = sm.compile(sm.Model([sp.Eq(x.diff(sm.t), -k * x)], name="decay"))
>>> print(f.source)  # doctest: +NORMALIZE_WHITESPACE
def decay(t, y, p):
    x = y[0]
    k = p[0]
    v0 = k * x
    v1 = -(v0)
    return jnp.stack([v1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import sympy as sp

from .._declare._symbols import is_neural_call, neural_spec, state_name, t
from ..errors import MissingValueError, UnsupportedFunctionError
from ._cache import artefact
from ._functions import BOOLEANS, FUNCTIONS, register_function
from ._networks import init_networks
from ._program import AbstractProgram, Program, label
from ._scalar import ScalarBuilder
from ._vector import VectorProgram, vectorised

__all__ = [
    "AbstractProgram",
    "BOOLEANS",
    "FUNCTIONS",
    "CompiledFunction",
    "CompiledModel",
    "Program",
    "VectorProgram",
    "build_program",
    "compile",
    "compile_exprs",
    "label",
    "register_function",
    "rhs_program",
]

# ----------------------------------------------------------------------------- SymPy -> program


def _is_network_derivative(e: Any) -> bool:
    # A marker on the class, not an import: the class lives upstream in symml._mechanics.
    return bool(getattr(type(e), "_symml_network_derivative", False))


class _Scan:
    """What one walk over the expressions found (shared subtrees visited once; the known leaves,
    states, parameters and ``t``, are not entered, so a state's own ``t`` is never seen).

    Attributes:
        unsupported: names of SymPy function classes without a JAX translation.
        calls: neural calls ``U_k(...)``.
        grads: network derivatives (`symml._mechanics`'s ``NeuralDerivative``).
        unknown: symbols, applied functions and derivatives that are neither states,
            parameters nor ``t``.
    """

    def __init__(self, exprs: Sequence[Any], known: set) -> None:
        self.unsupported: set[str] = set()
        self.calls: set[Any] = set()
        self.grads: set[Any] = set()
        self.unknown: set[Any] = set()
        seen: set[Any] = set()
        stack = list(exprs)
        while stack:
            e = stack.pop()
            if e in seen or e in known:
                continue
            seen.add(e)
            if isinstance(e, sp.core.function.AppliedUndef):
                if is_neural_call(e):
                    self.calls.add(e)
                    stack.extend(e.args)
                else:
                    self.unknown.add(e)
            elif _is_network_derivative(e):
                self.grads.add(e)
                stack.extend(e.args[0].args)
            elif isinstance(e, sp.Derivative) or e.is_Symbol:
                self.unknown.add(e)
            else:
                if (
                    isinstance(e, sp.Function)
                    and type(e) not in FUNCTIONS
                    and type(e) not in BOOLEANS
                    and not isinstance(e, sp.Piecewise)
                ):
                    self.unsupported.add(type(e).__name__)
                stack.extend(e.args)


def _unknown_error(unknown) -> MissingValueError:
    names = ", ".join(sorted(str(x) for x in unknown))
    return MissingValueError(
        f"Cannot compile: {names} are not states or parameters of this model. Expressions "
        "evaluated on a model may use only its states, parameters and t."
    )


def build_program(
    exprs: Sequence[Any],
    states: Sequence[sp.Expr],
    params: Sequence[sp.Symbol],
    title: str = "f",
    vectorize: bool | None = False,
) -> Program | VectorProgram:
    """Compile SymPy expressions of ``t``, ``states`` and ``params`` into a `Program`.

    ``vectorize=True`` builds a `VectorProgram` instead (outputs of one expression shape are
    evaluated together, on vectors); ``None`` does so when it pays: at least `VECTOR_MIN`
    outputs falling into at most half as many shapes, and no neural terms.
    """
    exprs = [sp.sympify(e) for e in exprs]
    known = {t, *states, *params}
    scan = _Scan(exprs, known)
    if scan.grads:
        # A network derivative whose network was replaced by an expression (a distilled H) is
        # an ordinary derivative: evaluate it symbolically.
        exprs = [
            e.replace(
                lambda g: _is_network_derivative(g) and not is_neural_call(g.args[0]), lambda g: g.doit()
            )
            for e in exprs
        ]
        scan = _Scan(exprs, known)
    if scan.unsupported:
        raise UnsupportedFunctionError(
            f"No JAX translation for SymPy function(s) {', '.join(sorted(scan.unsupported))}. "
            f"Supported: {', '.join(sorted(c.__name__ for c in FUNCTIONS))}. Rewrite the expression "
            "or add a translation with sm.register_function."
        )
    if scan.unknown:
        raise _unknown_error(scan.unknown)
    labels = tuple(state_name(s) for s in states)
    plabels = tuple(p.name for p in params)
    if vectorize is not False:
        # The vector builder reads the expressions as they are: the states are its leaves (a
        # derivative state matched whole, before its inner x(t)), so no substitution is needed
        # (substituting symbols into 2000 expressions took 0.8 s of a 1000-oscillator chain).
        vector = vectorised(
            exprs,
            {s: (i, label(lab)) for i, (s, lab) in enumerate(zip(states, labels))},
            {p: (j, label(p.name)) for j, p in enumerate(params)},
            bool(scan.calls or scan.grads),
            vectorize,
            label(title),
            labels,
            plabels,
        )
        if vector is not None:
            return vector
    # Scalar code goes through SymPy's CSE, which must not see x(t) inside Derivative(x(t), t):
    # the states become plain symbols first.
    state_syms, fwd = {}, {}
    for i, s in enumerate(states):
        sym = sp.Symbol(f"_y{i}", real=True)
        fwd[s] = sym
        state_syms[sym] = (i, label(labels[i]))
    param_syms = {}
    for j, p in enumerate(params):
        sym = sp.Symbol(f"_p{j}", real=True)
        fwd[p] = sym
        param_syms[sym] = (j, label(p.name))
    # Neural outputs: replace each call by a symbol; its inputs are compiled separately.
    net_syms = {}
    for i, c in enumerate(sorted(scan.calls, key=str)):
        spec, k = neural_spec(c)
        sym = sp.Symbol(f"_n{i}", real=True)
        net_syms[sym] = (spec.name, tuple(a.xreplace(fwd) for a in c.args), k)
        fwd[c] = sym
    # Derivatives of network outputs (``NeuralDerivative(U_k(x, y), y)``, made by sm.hamiltonian):
    # each becomes one instruction that differentiates the network with jax.grad.
    for i, g in enumerate(sorted(scan.grads, key=str)):
        call, *wrt = g.args
        spec, k = neural_spec(call)
        sym = sp.Symbol(f"_g{i}", real=True)
        which = tuple(call.args.index(v) for v in wrt)
        net_syms[sym] = (spec.name, tuple(a.xreplace(fwd) for a in call.args), k, which)
        fwd[g] = sym
    # Derivative states must be replaced before their base functions: xreplace does that,
    # since it matches the whole Derivative node first.
    replaced = [e.xreplace(fwd) for e in exprs]
    subs, reduced = sp.cse(replaced, symbols=sp.numbered_symbols("_c"), order="none")
    b = ScalarBuilder(state_syms, param_syms, net_syms)
    for s in sorted(state_syms, key=lambda s: state_syms[s][0]):
        b.build(s)
    for p in sorted(param_syms, key=lambda s: param_syms[s][0]):
        b.build(p)
    for sym, expr in subs:
        b.cse_ids[sym] = b.build(expr)
    outs = [b.build(e) for e in reduced]
    return Program(b.instrs, outs, b.names, labels, plabels, label(title))


# ----------------------------------------------------------------------------- modules


class CompiledFunction(eqx.Module):
    """Expressions compiled to a JAX function ``f(t, y, p) -> array`` (one entry each).

    ``y`` holds the states in ``states`` order and ``p`` the parameters in ``params`` order.
    ``networks`` holds the weights of any neural terms (equinox modules; trainable leaves).
    Build with `compile_exprs`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import symml as sm
        >>> lv = sm.zoo.lotka_volterra()
        >>> u, v = lv.states
        >>> f = sm.compile_exprs(lv, [u * v, u + v])
        >>> isinstance(f, sm.CompiledFunction)
        True
        >>> out = f(0.0, jnp.array([1.0, 2.0]), jnp.array([1.3, 0.9, 1.8, 0.8]))
        >>> [round(float(o), 4) for o in out]
        [2.0, 3.0]
    """

    networks: dict
    program: AbstractProgram = eqx.field(static=True)
    states: tuple = eqx.field(static=True)
    params: tuple = eqx.field(static=True)

    def __call__(self, t_, y, p):
        return self.program.stacked(t_, y, p, self.networks)

    @property
    def source(self) -> str:
        return self.program.source()


class CompiledModel(CompiledFunction):
    """A Model's right-hand side as a diffrax vector field ``f(t, y, args)``; ``args`` = params.

    Build with `compile`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import symml as sm
        >>> ho = sm.zoo.harmonic_oscillator()  # x'' = -(c x' + k x) / m
        >>> vf = sm.compile(ho)
        >>> isinstance(vf, sm.CompiledModel), vf.params
        (True, (c, k, m))
        >>> [round(float(d), 4) for d in vf(0.0, jnp.array([1.0, 0.0]), jnp.array([0.4, 4.0, 1.0]))]
        [0.0, -4.0]
    """


def _networks_for(model, networks, key):
    nets = dict(model.networks)
    if networks:
        nets.update(networks)
    missing = [s for s in model.neural if s.name not in nets]
    if missing:
        nets.update(init_networks(missing, key if key is not None else jax.random.PRNGKey(0)))
    return {s.name: nets[s.name] for s in model.neural}


def rhs_program(model: Any, vectorize: bool | None = None) -> Program | VectorProgram:
    """The `Program` of ``model``'s right-hand side in ``model.states`` order (built once per model).

    Networks are not part of it: a neural term is an instruction that calls the network passed
    at run time, so one program serves every set of weights. ``vectorize`` is as in
    `build_program` (by default a large model with repeated structure gets a `VectorProgram`).
    """

    def build() -> Program | VectorProgram:
        exprs = [model.rhs[s] for s in model.states]
        return build_program(exprs, model.states, model.params, model.name, vectorize=vectorize)

    return artefact(model, "program", ("rhs", vectorize), build)


def compile(  # noqa: A001
    model: Any,
    networks: Mapping[str, Any] | None = None,
    key: jax.Array | None = None,
    vectorize: bool | None = None,
) -> CompiledModel:
    """Compile ``model``'s right-hand side to a JAX vector field (the program is built once per model).

    Args:
        model: a `symml.Model`.
        networks: weights of neural terms by placeholder name, overriding those on the model.
        key: the random key for weights that neither ``networks`` nor the model provide
            (default ``PRNGKey(0)``).
        vectorize: ``True`` evaluates right-hand sides of one shape together, on vectors (a stencil
            as slices), ``False`` emits scalar code, ``None`` (default) decides (`build_program`).

    Returns:
        A `CompiledModel`: ``f(t, y, p)`` with ``y`` in ``model.states`` order and ``p`` in
        ``model.params`` order.

    Raises:
        UnsupportedFunctionError: a function without a JAX translation, or ``vectorize=True``
            for a model with neural terms.
        MissingValueError: a symbol that is neither a state nor a parameter.

    Examples:
        >>> import jax.numpy as jnp
        >>> import symml as sm
        >>> lv = sm.zoo.lotka_volterra()  # params (alpha, beta, delta, gamma)
        >>> vf = sm.compile(lv)
        >>> dy = vf(0.0, jnp.array([1.0, 2.0]), jnp.array([1.3, 0.9, 1.8, 0.8]))
        >>> [round(float(d), 4) for d in dy]
        [-0.5, 2.0]

        A chain of 20 masses declared in one line compiles to a few vector operations:

        >>> import sympy as sp
        >>> x = sm.states("x", n=20); k, = sm.parameters("k"); w = [0, *x, 0]
        >>> eqs = [sp.Eq(x[i].diff(sm.t, 2), k * (w[i] - 2 * x[i] + w[i + 2])) for i in range(20)]
        >>> vf, ref = sm.compile(sm.Model(eqs)), sm.compile(sm.Model(eqs), vectorize=False)
        >>> type(vf.program).__name__, vf.source.count("y[")
        ('VectorProgram', 6)
        >>> y, p = jnp.arange(40.0), jnp.array([2.0])
        >>> bool(jnp.allclose(vf(0.0, y, p), ref(0.0, y, p)))
        True
    """
    nets = _networks_for(model, networks, key) if model.neural else {}
    return CompiledModel(nets, rhs_program(model, vectorize), tuple(model.states), tuple(model.params))


def compile_exprs(
    model: Any, exprs: Sequence[sp.Expr], networks: Mapping[str, Any] | None = None, title: str = "f"
) -> CompiledFunction:
    """Compile expressions of a model's states, parameters and ``t`` (observables, events).

    Args:
        model: a `symml.Model`.
        exprs: SymPy expressions; the function returns one entry per expression.
        networks: weights of neural terms used by the expressions (default: the model's).
        title: the name of the generated function (in ``source``).

    Returns:
        A `CompiledFunction` ``f(t, y, p)``.

    Raises:
        UnsupportedFunctionError: a function without a JAX translation.
        MissingValueError: a symbol that is neither a state nor a parameter of ``model``.

    Examples:
        >>> import jax.numpy as jnp, sympy as sp
        >>> import symml as sm
        >>> pend = sm.zoo.pendulum()
        >>> theta, omega = pend.states
        >>> g, l = pend.params
        >>> energy = sm.compile_exprs(pend, [omega**2 / 2 - g / l * sp.cos(theta)], title="energy")
        >>> round(float(energy(0.0, jnp.array([0.0, 2.0]), jnp.array([9.81, 1.0]))[0]), 4)
        -7.81
    """
    exprs = tuple(sp.sympify(e) for e in exprs)
    prog = artefact(model, "exprs", exprs, lambda: build_program(exprs, model.states, model.params, title))
    uses_nets = any(is_neural_call(c) for e in exprs for c in e.atoms(sp.core.function.AppliedUndef))
    nets = _networks_for(model, networks, None) if (uses_nets and model.neural) else {}
    return CompiledFunction(nets, prog, tuple(model.states), tuple(model.params))
