"""The limits of what a symml file may ask for, and the checked readers of its numbers.

`symml.load` rebuilds expressions node by node. SymPy evaluates numbers eagerly, so a file
holding ``Pow(10, 10**10)`` would run for hours and fill the memory; a derivative of order 10**6
is as bad; a deep tree overflows Python's stack; a network spec allocates its weights before the
stored arrays are read. Every such request is checked here against a limit before anything is
built, and refused with `FileFormatError`.

>>> checked_int("12")
12
>>> checked_pow(sp.Integer(10), sp.Integer(10**10))
Traceback (most recent call last):
    ...
symml._file_limits.FileFormatError: exponent 10000000000 is beyond the limit of 1000 for a symml file
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .errors import SymmlError

__all__ = ["FileFormatError", "checked_int", "checked_pow", "node_list", "checked_name"]


class FileFormatError(SymmlError, ValueError):
    """A file is not a symml file, or contains a node symml does not know."""


# Limits on what a file may ask for. SymPy evaluates numbers eagerly (``Pow(10, 10**10)`` would
# run for hours and fill the memory), a deep tree overflows Python's stack, and a network spec
# allocates its weights before they are read: each is checked before anything is built.
MAX_FILE_BYTES = 256 * 2**20  # a trained 250-500-500-250 surrogate is about 6 MB
MAX_DEPTH = 150  # nesting of expression nodes; written models stay well below
MAX_EXPONENT = 1000  # |p| and |q| of a numeric exponent p/q
MAX_DIGITS = 1000  # digits of an integer or rational in the file
MAX_DERIVATIVE_ORDER = 20
MAX_NETWORK_PARAMETERS = 50_000_000
MAX_NETWORK_DEPTH = 64
MAX_NAME = 200  # characters of a symbol or model name


def checked_int(s: Any, what: str = "integer") -> int:
    if isinstance(s, bool) or not isinstance(s, (str, int)):
        raise FileFormatError(f"bad {what} {s!r}"[:200])
    if isinstance(s, str) and len(s.lstrip("-")) > MAX_DIGITS:
        raise FileFormatError(f"{what} with {len(s)} digits; symml files hold at most {MAX_DIGITS}")
    try:
        out = int(s)
    except ValueError:
        raise FileFormatError(f"bad {what} {s!r}"[:200]) from None
    if isinstance(s, int) and abs(out).bit_length() > 4 * MAX_DIGITS:
        raise FileFormatError(f"{what} too large; symml files hold at most {MAX_DIGITS} digits")
    return out


def checked_pow(base: sp.Expr, exp: sp.Expr) -> sp.Expr:
    if isinstance(exp, sp.Rational) and max(abs(int(exp.p)), abs(int(exp.q))) > MAX_EXPONENT:
        raise FileFormatError(f"exponent {exp} is beyond the limit of {MAX_EXPONENT} for a symml file")
    if isinstance(exp, sp.Float) and base.is_Number and abs(float(exp)) > MAX_EXPONENT:
        raise FileFormatError(f"exponent {exp} of the number {base} is beyond the limit of {MAX_EXPONENT}")
    return sp.Pow(base, exp)


def node_list(x: Any) -> list:
    if not isinstance(x, list):
        raise FileFormatError(f"expected a list of nodes, got {x!r}"[:200])
    return x


def checked_name(s: Any) -> str:
    if not isinstance(s, str) or not s or len(s) > MAX_NAME:
        raise FileFormatError(f"bad name {s!r}"[:200])
    return s


def checked_identifier(s: Any) -> str:
    """A symbol's name from a file: what `symml.states` and `symml.parameters` accept."""
    s = checked_name(s)
    if not s.isidentifier():
        raise FileFormatError(
            f"bad symbol name {s!r} in the file: states, parameters and networks are named by "
            "identifiers (letters, digits and '_', not starting with a digit)"[:300]
        )
    return s
