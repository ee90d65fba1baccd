"""The declaration vocabulary: the independent variable ``t``, states, parameters, and
placeholders for neural terms.

States are SymPy applied functions ``x(t)``; parameters are real symbols of the
`Parameter` class, so that a model can tell a declared constant from a typo.

>>> import symml as sm
>>> x, y = sm.states("x y")
>>> g, = sm.parameters("g")
>>> x.diff(sm.t)
Derivative(x(t), t)
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import sympy as sp
from sympy.core.function import AppliedUndef, UndefinedFunction

from ..errors import ModelError

t = sp.Symbol("t", real=True)
"""The independent variable shared by every model: a real SymPy Symbol ``t``.

States are functions of it (``x(t)``), derivatives are taken along it (``x.diff(t)``), and
equations may use it explicitly (``sp.cos(w * t)``)."""

ACTIVATIONS = ("tanh", "relu", "softplus", "gelu", "sigmoid", "silu", "elu", "identity", "sin")


class Parameter(sp.Symbol):
    """A declared model constant. Create with `parameters`; behaves as a SymPy Symbol.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> k, = sm.parameters("k", positive=True)
        >>> isinstance(k, sm.Parameter), isinstance(k, sp.Symbol), k.is_positive
        (True, True, True)
        >>> sm.zoo.pendulum().params
        (g, l)
        >>> all(isinstance(p, sm.Parameter) for p in sm.zoo.pendulum().params)
        True
    """


def states(names: str, n: int | None = None, **assumptions: Any) -> Any:
    """Declare states, returned as SymPy applied functions of ``t``.

    Args:
        names: the names, separated by spaces or commas (``"x y"``).
        n: declare each name as a vector of ``n`` states ``x_0(t) ... x_{n-1}(t)`` in one line
            (large models: a chain of oscillators, a discretised field).
        **assumptions: SymPy assumptions for the functions (``real=True`` unless given).

    Returns:
        One applied function ``x(t)`` per name: always a tuple, even for one name. With ``n``,
        each name gives a tuple of ``n`` states (``x[i]`` is ``x_i(t)``); one name returns its
        tuple directly, several names a tuple of such tuples.

    Raises:
        ModelError: a name is ``t`` (the independent variable), is not an identifier
            (``"1x"``) or is given twice (``"a a"``).
        TypeError: ``names`` is not a string.
        ValueError: ``names`` holds no name; ``n`` is not a positive integer.

    >>> x, = states("x")
    >>> x
    x(t)
    >>> u = states("u", n=3)
    >>> u, u[1].diff(t)
    ((u_0(t), u_1(t), u_2(t)), Derivative(u_1(t), t))
    """
    if n is not None:
        groups = tuple(states(" ".join(_indexed(name, n)), **assumptions) for name in _split(names))
        return groups[0] if len(groups) == 1 else groups
    assumptions.setdefault("real", True)
    out = tuple(UndefinedFunction(n, bases=(StateCall,), **assumptions)(t) for n in _split(names))
    for s in out:
        if s.func.__name__ == "t":
            raise ModelError("A state cannot be called 't': that name is the independent variable.")
    return out


class StateCall(AppliedUndef):
    """A state ``x(t)`` as `states` makes it: a SymPy applied undefined function of ``t`` whose
    derivatives along ``t`` are built directly.

    ``x.diff(t)`` of an undefined function of ``t`` alone is ``Derivative(x(t), t)``, and SymPy
    finds that by the chain rule through the arguments: 0.3 ms per call, 0.5 s of the 1.3-1.8 s
    a user spends writing the 1000 equations of an oscillator chain. Here it is the unevaluated
    `sympy.Derivative` (0.01 ms), the same object. It compares and hashes as the plain
    ``sp.Function(name, real=True)(t)`` (SymPy compares undefined functions by name and
    assumptions), which is what a saved and loaded model holds.

    >>> import sympy as sp
    >>> x, = states("x")
    >>> x.diff(t, 2) == sp.Function("x", real=True)(t).diff(t, 2), x.diff(t, 2)
    (True, Derivative(x(t), (t, 2)))
    >>> x == sp.Function("x", real=True)(t), x.diff(sp.Symbol("s"))
    (True, 0)
    """

    def diff(self, *symbols: Any, **assumptions: Any) -> Any:
        if not assumptions and _along_t(symbols):
            return sp.Derivative(self, *symbols)
        return super().diff(*symbols, **assumptions)

    @classmethod
    def class_key(cls) -> Any:
        # SymPy's `Function.class_key` imports a module and builds a table on every call, and
        # arithmetic on states calls it about 24 times per term (SymPy's cache keys hash the
        # function classes): kept per class, the chain's 1000 right-hand sides took 0.49 s
        # of CPU time against 0.59 s (mean of 4 runs each). The value is SymPy's own.
        key = cls.__dict__.get("_symml_class_key")
        if key is None:
            key = super().class_key()
            cls._symml_class_key = key
        return key


def _along_t(symbols: tuple) -> bool:
    """``symbols`` of ``diff`` name only ``t`` with positive integer counts (``t``, ``t, 2``,
    ``(t, 2)``); anything else takes SymPy's general route."""
    if not symbols or isinstance(symbols[0], int):
        return False
    for s in symbols:
        if isinstance(s, tuple):
            if not (len(s) == 2 and s[0] is t and type(s[1]) is int and s[1] >= 1):
                return False
        elif not (s is t or (type(s) is int and s >= 1)):
            return False
    return True


def parameters(names: str, n: int | None = None, **assumptions: Any) -> Any:
    """Declare parameters (real by default; pass ``positive=True`` to help closed forms).

    Args:
        names: the names, separated by spaces or commas (``"m k g"``).
        n: declare each name as a vector of ``n`` parameters ``k_0 ... k_{n-1}`` in one line.
        **assumptions: SymPy assumptions (``real=True`` unless a sign assumption is given).

    Returns:
        One `Parameter` (a SymPy Symbol) per name, as a tuple. With ``n``, each name gives a
        tuple of ``n`` parameters; one name returns its tuple directly, several names a tuple
        of such tuples.

    Raises:
        ModelError: a name is ``t`` (the independent variable), is not an identifier
            (``"1x"``) or is given twice (``"a a"``).
        TypeError: ``names`` is not a string.
        ValueError: ``names`` holds no name; ``n`` is not a positive integer.

    >>> m, k = parameters("m k", positive=True)
    >>> m.is_positive
    True
    >>> parameters("c", n=2)
    (c_0, c_1)
    """
    if n is not None:
        groups = tuple(parameters(" ".join(_indexed(name, n)), **assumptions) for name in _split(names))
        return groups[0] if len(groups) == 1 else groups
    if "positive" not in assumptions and "nonnegative" not in assumptions:
        assumptions.setdefault("real", True)
    out = []
    for name in _split(names):
        if name == "t":
            raise ModelError("A parameter cannot be called 't': that name is the independent variable.")
        out.append(Parameter(name, **assumptions))
    return tuple(out)


def _indexed(name: str, n: Any) -> list[str]:
    # `bool` is an int subclass; n=True is a mistake, not one element.
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (the length of the vector {name!r}), got {n!r}")
    return [f"{name}_{i}" for i in range(n)]


def _split(names: str) -> list[str]:
    if not isinstance(names, str):
        raise TypeError(f"names must be a string such as 'x y', got {type(names).__name__}")
    parts = names.replace(",", " ").split()
    if not parts:
        raise ValueError("names is empty; give one or more names separated by spaces, e.g. 'x y'")
    # Names become CSV columns, keyword-style lookups ("x_t") and printed code: an identifier
    # keeps all of those unambiguous, and a repeated name would make two symbols that print alike.
    for n in parts:
        if not n.isidentifier():
            raise ModelError(
                f"names: {n!r} (in {names!r}) is not a valid name; use letters, digits and '_', "
                "starting with a letter, e.g. 'x1' or 'k_on'."
            )
    seen = set()
    for n in parts:
        if n in seen:
            raise ModelError(f"names: {n!r} appears twice in {names!r}; give each name once.")
        seen.add(n)
    return parts


def is_state(expr: sp.Basic) -> bool:
    """True for ``x(t)``: an undefined function applied to exactly ``t`` (not a neural term)."""
    return isinstance(expr, sp.core.function.AppliedUndef) and expr.args == (t,) and not is_neural_call(expr)


def _variable_count(expr: sp.Derivative) -> tuple[tuple[sp.Expr, int], ...]:
    # SymPy's stubs type `Derivative.variable_count` as `Basic`; it is a tuple of (variable, count).
    return cast("tuple[tuple[sp.Expr, int], ...]", expr.variable_count)


def is_derivative_state(expr: sp.Basic) -> bool:
    """True for ``Derivative(x(t), (t, n))`` with ``x`` a state."""
    return (
        isinstance(expr, sp.Derivative)
        and is_state(expr.expr)
        and all(v == t for v, _ in _variable_count(expr))
    )


def base_state(expr: sp.Basic) -> sp.Expr:
    """``x(t)`` for ``x(t)`` or any derivative of it."""
    # Callers pass a state or a derivative state, both `Expr`; SymPy types `Derivative.expr` as `Basic`.
    return cast(sp.Expr, expr.expr if isinstance(expr, sp.Derivative) else expr)


def derivative_order(expr: sp.Basic) -> int:
    """The order ``n`` of ``Derivative(x(t), (t, n))``; 0 for anything else."""
    if isinstance(expr, sp.Derivative):
        return int(sum(c for _, c in _variable_count(expr)))
    return 0


def state_name(expr: sp.Basic) -> str:
    """Canonical string name: ``x`` for ``x(t)``, ``x_t`` for its derivative, ``x_tt`` ...

    These names are used for CSV/pandas columns and on the command line.
    """
    base = base_state(expr)
    return base.func.__name__ + "_t" * derivative_order(expr)


def state_aliases(expr: sp.Basic) -> tuple[str, ...]:
    """Other accepted spellings of a state name (``x'``, ``x''``, ``Dx``, ``D2x``)."""
    base = base_state(expr).func.__name__
    n = derivative_order(expr)
    if n == 0:
        return ()
    return (base + "'" * n, ("D" if n == 1 else f"D{n}") + base)


# --------------------------------------------------------------------------- neural terms


@dataclasses.dataclass(frozen=True)
class NeuralSpec:
    """The architecture of one neural term; hashable, so SymPy can carry it on a function."""

    name: str
    inputs: tuple[sp.Expr, ...]
    outputs: int
    width: int
    depth: int
    activation: str
    final_activation: str = "identity"


class Neural:
    """A neural-network placeholder whose outputs are SymPy expressions.

    Create with `neural`. ``U[k]`` is the applied function ``U_k(inputs...)``; it can
    appear anywhere in a model's equations.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> u, v = sm.states("u v")
        >>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
        >>> U
        Neural('U', inputs=[u(t), v(t)], outputs=2, width=8, depth=1, activation='tanh')
        >>> len(U), U.name, U[1]
        (2, 'U', U_1(u(t), v(t)))
        >>> m = sm.Model([sp.Eq(u.diff(sm.t), U[0]), sp.Eq(v.diff(sm.t), U[1])])
        >>> [s.name for s in m.neural]
        ['U']
    """

    def __init__(self, spec: NeuralSpec):
        self.spec = spec
        self._outputs = tuple(
            sp.Function(f"{spec.name}_{k}", real=True, _symml_neural=spec, _symml_index=k)(*spec.inputs)
            for k in range(spec.outputs)
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def inputs(self) -> tuple[sp.Expr, ...]:
        return self.spec.inputs

    def __getitem__(self, k: int) -> sp.Expr:
        try:
            return self._outputs[k]
        except IndexError:
            raise IndexError(
                f"neural term {self.name!r} has {self.spec.outputs} output(s) "
                f"(indices 0..{self.spec.outputs - 1}); got index {k}"
            ) from None

    def __iter__(self):
        return iter(self._outputs)

    def __len__(self) -> int:
        return self.spec.outputs

    def __repr__(self) -> str:
        ins = ", ".join(str(i) for i in self.inputs)
        s = self.spec
        return (
            f"Neural({s.name!r}, inputs=[{ins}], outputs={s.outputs}, width={s.width}, "
            f"depth={s.depth}, activation={s.activation!r})"
        )


def neural(
    name: str,
    inputs: list[sp.Expr] | tuple[sp.Expr, ...],
    outputs: int = 1,
    width: int = 32,
    depth: int = 2,
    activation: str = "tanh",
    final_activation: str = "identity",
) -> Neural:
    """Declare a neural term ``name`` with the given inputs (states, derivative states or ``t``).

    Args:
        name: an identifier; output ``k`` is the SymPy function ``{name}_{k}``.
        inputs: the network's inputs: states, derivatives of states, or `t`.
        outputs: the number of outputs (each one a SymPy expression ``U[k]``).
        width: neurons per hidden layer.
        depth: hidden layers (0: a linear map).
        activation: the hidden activation, one of ``ACTIVATIONS``.
        final_activation: the activation of the output layer (``"identity"`` by default).

    Returns:
        A `Neural` placeholder: ``U[k]`` is its k-th output, ``len(U)`` the number of outputs.

    Raises:
        ModelError: an input is not a state, a derivative of a state or ``t``.
        ValueError: a bad name, no inputs, or an invalid size or activation.

    >>> u, v = states("u v")
    >>> U = neural("U", inputs=[u, v], outputs=2, width=8)
    >>> U[0]
    U_0(u(t), v(t))
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"neural term name must be an identifier like 'U', got {name!r}")
    if any(isinstance(i, str) for i in inputs):
        raise ModelError(
            f"neural term {name!r}: inputs must be SymPy states or sm.t, got strings {list(inputs)!r}. "
            "Declare the states with sm.states(...) and pass them, e.g. inputs=[u, v]."
        )
    inputs = tuple(sp.sympify(i, strict=True) for i in inputs)
    if not inputs:
        raise ValueError(f"neural term {name!r} needs at least one input (a state or t)")
    for i in inputs:
        if not (i == t or is_state(i) or is_derivative_state(i)):
            raise ModelError(
                f"neural term {name!r}: input {i} is not a state, a derivative of a state or t. "
                "Inputs must be declared with sm.states(...) (or be sm.t)."
            )
    if int(outputs) < 1:
        raise ValueError(f"neural term {name!r}: outputs must be >= 1, got {outputs}")
    if int(depth) < 0 or int(width) < 1:
        raise ValueError(f"neural term {name!r}: need depth >= 0 and width >= 1, got {depth}, {width}")
    for act in (activation, final_activation):
        if act not in ACTIVATIONS:
            raise ValueError(f"neural term {name!r}: unknown activation {act!r}; choose one of {ACTIVATIONS}")
    spec = NeuralSpec(name, inputs, int(outputs), int(width), int(depth), activation, final_activation)
    return Neural(spec)


def is_neural_call(expr: sp.Basic) -> bool:
    """True for an output ``U_k(...)`` of a neural placeholder."""
    return isinstance(expr, sp.core.function.AppliedUndef) and hasattr(expr.func, "_symml_neural")


def neural_spec(expr: sp.Basic) -> tuple[NeuralSpec, int]:
    """(spec, output index) of a neural call."""
    # `neural` attaches the spec to the function class it creates at run time.
    func: Any = expr.func
    return func._symml_neural, func._symml_index
