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
from typing import Any, cast

import equinox as eqx
import jax
import sympy as sp

from .._declare._symbols import is_neural_call, neural_spec, state_name, t
from ..errors import MissingValueError, UnsupportedFunctionError
from ._cache import artefact
from ._functions import BOOLEANS, FUNCTIONS, register_function, unsupported_message
from ._networks import init_networks
from ._program import Program, label
from ._vector import VectorProgram, vectorised

__all__ = [
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


class _Builder:
    def __init__(self, state_syms, param_syms, net_syms):
        self.instrs: list[tuple] = []
        self.names: list[str] = []
        self.memo: dict[sp.Basic, int] = {}
        self.cse_ids: dict[sp.Basic, int] = {}
        self.state_syms = state_syms  # Symbol -> (index, label)
        self.param_syms = param_syms  # Symbol -> (index, label)
        self.net_syms = net_syms  # Symbol -> (name, input exprs, output index)
        self.counter = 0
        self.index: dict[tuple, int] = {}

    def emit(self, kind, data, args, name=None) -> int:
        key = (kind, data, tuple(args))
        if key in self.index:
            return self.index[key]
        self.index[key] = len(self.instrs)
        self.instrs.append(key)
        if name is None:
            name = f"v{self.counter}"
            self.counter += 1
        self.names.append(name)
        return len(self.instrs) - 1

    def const(self, value: float) -> int:
        return self.emit("const", float(value), (), name=repr(float(value)))

    def build(self, e: Any) -> int:
        if e in self.memo:
            return self.memo[e]
        i = self._build(e)
        self.memo[e] = i
        return i

    def _build(self, e: Any) -> int:
        if e in self.cse_ids:
            return self.cse_ids[e]
        if e == t:
            return self.emit("t", None, (), name="t")
        if e in self.state_syms:
            idx, label = self.state_syms[e]
            return self.emit("y", idx, (), name=label)
        if e in self.param_syms:
            idx, label = self.param_syms[e]
            return self.emit("p", idx, (), name=label)
        if e in self.net_syms:
            name, inputs, k, *wrt = self.net_syms[e]
            args = tuple(self.build(a) for a in inputs)
            if wrt:  # a derivative of a network output (see build_program)
                tag = "".join(map(str, wrt[0]))
                return self.emit("netgrad", (name, k, wrt[0]), args, name=f"d{name}_{k}_{tag}")
            n = self.emit("net", name, args, name=f"{name}_out")
            return self.emit("item", k, (n,), name=f"{name}_{k}")
        if e is sp.true or e is sp.false:
            return self.emit("bconst", bool(e), (), name=str(bool(e)))
        if e.is_Number or e.is_NumberSymbol:
            if e.is_real is False or not e.is_finite:
                raise UnsupportedFunctionError(
                    f"The constant {e} is not a finite real number; symml compiles real models only."
                )
            return self.const(float(e))
        if e is sp.I or (e.is_number and e.is_real is False):
            raise UnsupportedFunctionError(
                f"{e} is complex; symml compiles real-valued models. Split complex states into "
                "real and imaginary parts."
            )
        if e.is_Symbol:
            raise MissingValueError(
                f"Symbol {e} is neither a state, a parameter nor t of the compiled expression."
            )
        if e.is_Add:
            return self._build_add(e)
        if e.is_Mul:
            return self._build_mul(e)
        if e.is_Pow:
            return self._build_pow(e)
        if isinstance(e, sp.Piecewise):
            return self._build_piecewise(e)
        if type(e) in BOOLEANS:
            return self.emit("bool", type(e), tuple(self.build(a) for a in e.args))
        if isinstance(e, sp.Heaviside) and len(e.args) == 1:
            return self.emit("fn", sp.Heaviside, (self.build(e.args[0]), self.const(0.5)))
        cls = type(e)
        if cls in FUNCTIONS:
            return self.emit("fn", cls, tuple(self.build(a) for a in e.args))
        raise UnsupportedFunctionError(unsupported_message(e))

    def _build_add(self, e):
        pos, neg = [], []
        for term in sp.Add.make_args(e):
            c, rest = term.as_coeff_Mul()
            if c.is_negative:
                neg.append(-term)
            else:
                pos.append(term)
        pos.sort(key=sp.default_sort_key)
        neg.sort(key=sp.default_sort_key)
        if not pos:
            first = self.build(sp.Add(*neg, evaluate=False) if len(neg) > 1 else neg[0])
            return self.emit("neg", None, (first,))
        acc = (
            self.emit("add", None, tuple(self.build(p) for p in pos)) if len(pos) > 1 else self.build(pos[0])
        )
        for n_ in neg:
            acc = self.emit("sub", None, (acc, self.build(n_)))
        return acc

    def _build_mul(self, e):
        coeff, rest = e.as_coeff_Mul()
        if coeff.is_negative:
            return self.emit("neg", None, (self.build(-e),))
        num, den = [], []
        factors = sp.Mul.make_args(rest)
        if coeff != 1:
            num.append(coeff)
        for f in cast(tuple[Any, ...], factors):
            if f.is_Pow and f.exp.is_Number and f.exp.is_negative:
                den.append(sp.Pow(f.base, -f.exp))
            else:
                num.append(f)
        num_id = (
            self.emit("mul", None, tuple(self.build(f) for f in num))
            if len(num) > 1
            else (self.build(num[0]) if num else self.const(1.0))
        )
        if not den:
            return num_id
        den_id = (
            self.emit("mul", None, tuple(self.build(f) for f in den)) if len(den) > 1 else self.build(den[0])
        )
        return self.emit("div", None, (num_id, den_id))

    def _build_pow(self, e):
        b, x = e.base, e.exp
        if b is sp.E:
            return self.emit("fn", sp.exp, (self.build(x),))
        if x.is_Integer:
            n = int(x)
            if n < 0:
                return self.emit("div", None, (self.const(1.0), self.build(sp.Pow(b, -n))))
            return self.emit("ipow", n, (self.build(b),))
        if x == sp.Rational(1, 2):
            return self.emit("sqrt", None, (self.build(b),))
        if x == sp.Rational(-1, 2):
            return self.emit("rsqrt", None, (self.build(b),))
        if x.is_Rational and x.q == 2:
            # b**(n/2) as sqrt(b)**n: exact for half-integers and cheaper than exp(log(b) * x).
            root = self.emit("sqrt", None, (self.build(b),))
            powered = self.emit("ipow", abs(int(x.p)), (root,))
            return powered if x.p > 0 else self.emit("div", None, (self.const(1.0), powered))
        return self.emit("pow", None, (self.build(b), self.build(x)))

    def _build_piecewise(self, e):
        pieces = list(e.args)
        if pieces[-1].cond is sp.true:
            acc = self.build(pieces.pop().expr)
        else:
            acc = self.const(float("nan"))
        for piece in reversed(pieces):
            acc = self.emit("where", None, (self.build(piece.cond), self.build(piece.expr), acc))
        return acc


def _is_network_derivative(e: Any) -> bool:
    # A marker on the class, not an import: the class lives upstream in symml._mechanics.
    return bool(getattr(type(e), "_symml_network_derivative", False))


def _unsupported_in(exprs) -> list[str]:
    bad = set()
    for e in exprs:
        for f in sp.preorder_traversal(e):
            if isinstance(f, sp.Function) and not isinstance(f, sp.core.function.AppliedUndef):
                if (
                    type(f) not in FUNCTIONS
                    and not isinstance(f, (sp.Piecewise,))
                    and type(f) not in BOOLEANS
                    and not _is_network_derivative(f)
                ):
                    bad.add(type(f).__name__)
    return sorted(bad)


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
    # A network derivative whose network was replaced by an expression (a distilled H) is an
    # ordinary derivative: evaluate it symbolically.
    exprs = [
        e.replace(lambda g: _is_network_derivative(g) and not is_neural_call(g.args[0]), lambda g: g.doit())
        if any(_is_network_derivative(f) for f in e.atoms(sp.Function))
        else e
        for e in exprs
    ]
    bad = _unsupported_in(exprs)
    if bad:
        raise UnsupportedFunctionError(
            f"No JAX translation for SymPy function(s) {', '.join(bad)}. Supported: "
            f"{', '.join(sorted(c.__name__ for c in FUNCTIONS))}. Rewrite the expression or add "
            "a translation with sm.register_function."
        )
    state_syms, fwd = {}, {}
    for i, s in enumerate(states):
        sym = sp.Symbol(f"_y{i}", real=True)
        fwd[s] = sym
        state_syms[sym] = (i, label(state_name(s)))
    param_syms = {}
    for j, p in enumerate(params):
        sym = sp.Symbol(f"_p{j}", real=True)
        fwd[p] = sym
        param_syms[sym] = (j, label(p.name))
    # Neural outputs: replace each call by a symbol; its inputs are compiled separately.
    net_syms = {}
    calls = sorted(
        {c for e in exprs for c in e.atoms(sp.core.function.AppliedUndef) if is_neural_call(c)}, key=str
    )
    for i, c in enumerate(calls):
        spec, k = neural_spec(c)
        sym = sp.Symbol(f"_n{i}", real=True)
        net_syms[sym] = (spec.name, tuple(a.xreplace(fwd) for a in c.args), k)
        fwd[c] = sym
    # Derivatives of network outputs (``NeuralDerivative(U_k(x, y), y)``, made by sm.hamiltonian):
    # each becomes one instruction that differentiates the network with jax.grad.
    grads = sorted({g for e in exprs for g in sp.preorder_traversal(e) if _is_network_derivative(g)}, key=str)
    for i, g in enumerate(grads):
        call, *wrt = g.args
        spec, k = neural_spec(call)
        sym = sp.Symbol(f"_g{i}", real=True)
        which = tuple(call.args.index(v) for v in wrt)
        net_syms[sym] = (spec.name, tuple(a.xreplace(fwd) for a in call.args), k, which)
        fwd[g] = sym
    # Derivative states must be replaced before their base functions: xreplace does that,
    # since it matches the whole Derivative node first.
    replaced = [e.xreplace(fwd) for e in exprs]
    leftover = set()
    for e in replaced:
        leftover |= e.atoms(sp.core.function.AppliedUndef, sp.Derivative)  # one walk: big models
        leftover |= {
            s
            for s in e.free_symbols
            if s != t and s not in state_syms and s not in param_syms and s not in net_syms
        }
    if leftover:
        names = ", ".join(sorted(str(x) for x in leftover))
        raise MissingValueError(
            f"Cannot compile: {names} are not states or parameters of this model. Expressions "
            "evaluated on a model may use only its states, parameters and t."
        )
    labels = tuple(state_name(s) for s in states)
    plabels = tuple(p.name for p in params)
    if vectorize is not False:
        vector = vectorised(
            replaced, state_syms, param_syms, bool(net_syms), vectorize, label(title), labels, plabels
        )
        if vector is not None:
            return vector
    subs, reduced = sp.cse(replaced, symbols=sp.numbered_symbols("_c"), order="none")
    b = _Builder(state_syms, param_syms, net_syms)
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
    program: Program | VectorProgram = eqx.field(static=True)
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
