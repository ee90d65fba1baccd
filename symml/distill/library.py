"""Feature libraries built from SymPy: the candidate terms of sparse regression.

A library turns a list of inputs (states, derivative states, plain symbols) into a list of
SymPy terms; the regression then looks for a sparse linear combination of them. Terms are
SymPy expressions from the start, so fitted coefficients map one-to-one onto them and the
result is a SymPy expression without any printing or parsing.

>>> import sympy as sp
>>> from symml.distill.library import Polynomial, Trig, make_library
>>> x, y = sp.symbols("x y")
>>> Polynomial(2).terms([x, y])
[1, x, y, x**2, x*y, y**2]
>>> (Polynomial(1, bias=False) + Trig()).terms([x])
[x, sin(x), cos(x)]
>>> make_library(["polynomial", "sin"], degree=1).terms([x])
[1, x, sin(x)]
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import itertools
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile._codegen import build_program
from .._compile._program import Program
from .._data import key_name
from ..errors import DataError, SymmlError, suggest


class UnknownLibraryError(SymmlError, ValueError):
    """A library was named that symml does not know, or a library spec has the wrong type."""


class Library(abc.ABC):
    """Candidate terms as a function of the inputs. Combine libraries with ``+``."""

    @abc.abstractmethod
    def terms(self, inputs: Sequence[sp.Expr]) -> list[sp.Expr]:
        """The library's terms for these inputs (SymPy expressions, without duplicates)."""

    def __add__(self, other: Any) -> Library:
        return Concat((self, make_library(other)))

    def __radd__(self, other: Any) -> Library:
        return Concat((make_library(other), self))


@dataclasses.dataclass(frozen=True)
class Polynomial(Library):
    """Monomials of the inputs (or of those in ``of``) up to total degree ``degree`` (graded
    order), with the constant term 1 when ``bias``.

    >>> x, y = sp.symbols("x y")
    >>> Polynomial(3, bias=False).terms([x])
    [x, x**2, x**3]
    >>> Polynomial(2, of=[y]).terms([x, y])
    [1, y, y**2]
    """

    degree: int = 3
    bias: bool = True
    of: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.degree, (int, np.integer)) or isinstance(self.degree, bool) or self.degree < 0:
            raise UnknownLibraryError(f"Polynomial degree must be an integer >= 0, got {self.degree!r}.")
        if self.of is not None:
            object.__setattr__(self, "of", tuple(self.of))

    def terms(self, inputs):
        chosen = list(inputs) if self.of is None else [_find_input(o, inputs) for o in self.of]
        out: list[sp.Expr] = [sp.S.One] if self.bias else []
        for d in range(1, int(self.degree) + 1):
            for combo in itertools.combinations_with_replacement(chosen, d):
                out.append(sp.Mul(*combo))
        return _dedup(out)


@dataclasses.dataclass(frozen=True)
class Trig(Library):
    """``sin(k z)`` and ``cos(k z)`` for every input ``z`` (or those in ``of``) and every
    frequency ``k``. ``kinds`` picks the functions (``("sin",)`` for sines only).

    ``of`` lists inputs (expressions or their names, e.g. ``"theta"``) to apply to.

    >>> x, v = sp.symbols("x v")
    >>> Trig(kinds=("sin",), of=["x"]).terms([x, v])
    [sin(x)]
    """

    frequencies: tuple = (1,)
    kinds: tuple = ("sin", "cos")
    of: tuple | None = None

    def __post_init__(self):
        for k in self.kinds:
            if k not in _TRIG:
                raise UnknownLibraryError(f"Trig kinds must be 'sin' or 'cos', got {k!r}.")
        for f in self.frequencies:
            if not isinstance(f, (int, float, sp.Number)) or f == 0:
                raise UnknownLibraryError(f"Trig frequencies must be non-zero numbers, got {f!r}.")
        object.__setattr__(self, "frequencies", tuple(self.frequencies))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if self.of is not None:
            object.__setattr__(self, "of", tuple(self.of))

    def terms(self, inputs):
        chosen = list(inputs) if self.of is None else [_find_input(o, inputs) for o in self.of]
        out = []
        for z in chosen:
            for f in self.frequencies:
                for k in self.kinds:
                    out.append(_TRIG[k](sp.nsimplify(f) * z))
        return _dedup(out)


_TRIG = {"sin": sp.sin, "cos": sp.cos}


@dataclasses.dataclass(frozen=True)
class RationalTerms(Library):
    """Saturating and switching terms: ``1/(1+z)``, ``1/(1+z²)`` and ``z/(1+z²)`` for every
    input ``z`` (or those in ``of``), and the same denominators times each other input ``w``
    (``w/(1+z)``, ``w/(1+z²)``, ``w z/(1+z²)``) when ``cross``.

    With the constant term and the monomials beside them they span the Michaelis–Menten and
    Holling forms (``z/(1+z) = 1 - 1/(1+z)``, ``z w/(1+z) = w - w/(1+z)``), Hill switches
    (``z²/(1+z²) = 1 - 1/(1+z²)``) and the rational kinetics of Strogatz's textbook models, in
    units where the half-saturation constant is 1. ``positive`` lists the inputs that stay
    above -1 on the data (default: every chosen one), the only ones given ``1/(1+z)``.

    >>> x, y = sp.symbols("x y")
    >>> RationalTerms(of=[x]).terms([x, y])
    [1/(x + 1), y/(x + 1), 1/(x**2 + 1), x/(x**2 + 1), y/(x**2 + 1), x*y/(x**2 + 1)]
    >>> RationalTerms(cross=False, positive=()).terms([x])
    [1/(x**2 + 1), x/(x**2 + 1)]
    """

    of: tuple | None = None
    positive: tuple | None = None
    cross: bool = True

    def __post_init__(self):
        for name in ("of", "positive"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def terms(self, inputs):
        chosen = list(inputs) if self.of is None else [_find_input(o, inputs) for o in self.of]
        positive = chosen if self.positive is None else [_find_input(o, inputs) for o in self.positive]
        out: list[sp.Expr] = []
        for z in chosen:
            others = [w for w in inputs if w != z] if self.cross else []
            if z in positive:
                out.append(1 / (1 + z))
                out.extend(w / (1 + z) for w in others)
            out.extend([1 / (1 + z**2), z / (1 + z**2)])
            out.extend(w / (1 + z**2) for w in others)
            out.extend(w * z / (1 + z**2) for w in others)
        return _dedup(out)


@dataclasses.dataclass(frozen=True)
class Custom(Library):
    """User terms: each item is either a SymPy expression of the inputs (used as it is) or
    a function of one argument (``sp.exp``, ``lambda z: 1 / (1 + z**2)``) applied to every
    input (or to those in ``of``).

    >>> x, y = sp.symbols("x y")
    >>> Custom([sp.exp, x * sp.sin(y)]).terms([x, y])
    [exp(x), exp(y), x*sin(y)]
    """

    functions: tuple = ()
    of: tuple | None = None

    def __post_init__(self):
        items = tuple(self.functions) if isinstance(self.functions, (list, tuple)) else (self.functions,)
        for f in items:
            if not (isinstance(f, sp.Basic) or callable(f) or isinstance(f, (int, float))):
                raise UnknownLibraryError(
                    f"Custom library items must be SymPy expressions or functions of one argument, "
                    f"got {f!r} ({type(f).__name__})."
                )
        object.__setattr__(self, "functions", items)
        if self.of is not None:
            object.__setattr__(self, "of", tuple(self.of))

    def terms(self, inputs):
        chosen = list(inputs) if self.of is None else [_find_input(o, inputs) for o in self.of]
        out = []
        for f in self.functions:
            if isinstance(f, (sp.Basic, int, float)):
                out.append(sp.sympify(f))
                continue
            for z in chosen:
                try:
                    e = f(z)
                except Exception as err:  # a user function that cannot take a SymPy argument
                    raise UnknownLibraryError(
                        f"Custom library function {_fname(f)} failed on the SymPy input {z}: {err}. "
                        "Library functions must accept and return SymPy expressions (use sp.exp, "
                        "not np.exp)."
                    ) from None
                e = sp.sympify(e) if not isinstance(e, sp.Basic) else e
                if not isinstance(e, sp.Expr):
                    raise UnknownLibraryError(
                        f"Custom library function {_fname(f)} returned {e!r} for input {z}; "
                        "it must return a SymPy expression."
                    )
                out.append(e)
        return _dedup(out)


@dataclasses.dataclass(frozen=True)
class Concat(Library):
    """Several libraries one after the other (duplicates removed)."""

    parts: tuple = ()

    def terms(self, inputs):
        out = []
        for p in self.parts:
            out.extend(p.terms(inputs))
        return _dedup(out)


def _fname(f: Callable) -> str:
    return getattr(f, "__name__", repr(f))


def _find_input(key: Any, inputs: Sequence[sp.Expr]) -> sp.Expr:
    for z in inputs:
        if key is z or (isinstance(key, sp.Basic) and key == z):
            return z
    names = [_input_name(z) for z in inputs]
    if isinstance(key, str) and key in names:
        return inputs[names.index(key)]
    raise UnknownLibraryError(
        f"Library input {key!r} is not one of the inputs ({', '.join(names)})."
        + (suggest(key, names) if isinstance(key, str) else "")
    )


def _input_name(z: sp.Expr) -> str:
    return z.name if isinstance(z, sp.Symbol) else key_name(z)


def _dedup(terms: Sequence[sp.Expr]) -> list[sp.Expr]:
    out: list[sp.Expr] = []
    seen = set()
    for e in terms:
        e = sp.sympify(e)
        if e.is_number:
            if e == 0:
                continue
            e = sp.S.One  # a constant term is the bias, whatever its scale
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


#: Library names accepted by `make_library` (and ``sm.discover(library=...)``).
NAMES = ("polynomial", "poly", "linear", "trig", "fourier", "sin", "cos", "exp", "rational")


def make_library(spec: Any = None, degree: int = 3) -> Library:
    """A `Library` from a flexible spec.

    ``spec`` may be ``None`` (polynomials up to ``degree``), a Library, a name (one of
    `NAMES`: ``"polynomial"`` uses ``degree``, ``"linear"`` is degree 1, ``"trig"``
    adds sin and cos of every input, ``"sin"``/``"cos"``/``"exp"`` one function of every
    input, ``"rational"`` the saturating terms of `RationalTerms`), a SymPy expression (one fixed
    term), a function of one argument, or a list mixing all of these.

    >>> x = sp.Symbol("x")
    >>> make_library("linear").terms([x])
    [1, x]
    """
    if spec is None:
        return Polynomial(degree)
    if isinstance(spec, Library):
        return spec
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name in ("polynomial", "poly"):
            return Polynomial(degree)
        if name == "linear":
            return Polynomial(1)
        if name in ("trig", "fourier"):
            return Trig()
        if name in ("sin", "cos"):
            return Trig(kinds=(name,))
        if name == "exp":
            return Custom((sp.exp,))
        if name == "rational":
            return RationalTerms()
        raise UnknownLibraryError(
            f"Unknown library {spec!r}; known names: {', '.join(NAMES)}."
            + suggest(name, NAMES)
            + " Libraries can also be sm.distill objects (Polynomial, Trig, Custom) or SymPy terms."
        )
    if isinstance(spec, (sp.Basic, int, float)) and not isinstance(spec, bool):
        return Custom((sp.sympify(spec),))
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise UnknownLibraryError("The library is empty; give at least one term or library name.")
        return Concat(tuple(make_library(s, degree) for s in spec))
    is_sympy_function = inspect.isclass(spec) and issubclass(spec, sp.Function)
    if is_sympy_function or (callable(spec) and not inspect.isclass(spec)):
        return Custom((spec,))
    raise UnknownLibraryError(
        f"Cannot make a library from {spec!r} ({type(spec).__name__}). Give a name such as "
        "'polynomial' or 'trig', a Library (Polynomial(3) + Trig()), SymPy terms, or a list of these."
    )


# ----------------------------------------------------------------------------- evaluation


def evaluate(terms: Sequence[sp.Expr], inputs: Sequence[sp.Expr], X: Any, check: bool = True) -> np.ndarray:
    """The feature matrix ``(n, len(terms))``: every term evaluated on the rows of ``X``
    (column ``j`` of ``X`` holds ``inputs[j]``). Uses symml's SymPy -> JAX table. With
    ``check``, a non-finite value raises `DataError` naming the term.

    >>> x, y = sp.symbols("x y")
    >>> evaluate([sp.S.One, x * y, sp.sin(x)], [x, y], np.array([[0.0, 2.0], [1.0, 3.0]])).round(4)
    array([[1.    , 0.    , 0.    ],
           [1.    , 3.    , 0.8415]])
    """

    terms = [sp.sympify(e) for e in terms]
    inputs = [sp.sympify(z) for z in inputs]
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(inputs):
        raise DataError(
            f"X must have shape (n, {len(inputs)}) for inputs {', '.join(map(str, inputs))}; got {X.shape}."
        )
    n = X.shape[0]
    if not terms:
        return np.zeros((n, 0))
    _check_terms(terms, inputs)
    prog = cast(Program, build_program(terms, inputs, (), "library"))
    cols = prog.run(jnp.asarray(0.0), jnp.asarray(X.T), jnp.zeros(0), {})
    out = np.column_stack([np.broadcast_to(np.asarray(c, dtype=float), (n,)) for c in cols])
    bad = ~np.isfinite(out)
    if check and bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        i = int(np.flatnonzero(bad[:, j])[0])
        raise DataError(
            f"Library term {terms[j]} is not finite at row {i} (inputs "
            + ", ".join(f"{z} = {X[i, k]:g}" for k, z in enumerate(inputs))
            + "). Remove the term from the library or restrict the data to its domain."
        )
    return out


def _check_terms(terms: Sequence[sp.Expr], inputs: Sequence[sp.Expr]) -> None:
    allowed = set(inputs)
    for e in terms:
        rest = e.xreplace({z: sp.Symbol("_ok") for z in inputs})
        bad = {s for s in rest.free_symbols if not (isinstance(s, sp.Symbol) and s.name == "_ok")}
        bad |= set(rest.atoms(sp.core.function.AppliedUndef)) | set(rest.atoms(sp.Derivative))
        if bad - allowed:
            names = ", ".join(sorted(map(str, bad - allowed)))
            raise UnknownLibraryError(
                f"Library term {e} uses {names}, which is not an input (inputs: "
                f"{', '.join(map(str, inputs))}). Library terms may only use the inputs."
            )
