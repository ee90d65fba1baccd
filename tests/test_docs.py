"""Docstring examples are runnable: every doctest in the package passes."""

import doctest
import importlib
import pkgutil

import pytest

import symml

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(symml.__path__, "symml.") if not m.name.startswith("symml.bench")
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
