"""Docstring examples are runnable: every doctest in the package passes."""

import doctest
import importlib
import pkgutil

import pytest

import symml

#: Doctests that run a whole pipeline (train a network, distill it): slow, run in CI's slow pass.
PIPELINES = {
    "symml.distill.distilled",
    "symml._train._result",
    # each trains a network (a PINN, a surrogate and its encoder, an amortized estimator)
    "symml._pinn._pinn",
    "symml._pinn._result",
    "symml._surrogate._surrogate",
    "symml._surrogate._invert",
    "symml._estimator._estimator",
    # each compiles several solves, gradients or training steps (seconds of JIT apiece)
    "symml._analytic._derived",
    "symml._data._dataset",
    "symml._discover._discover",
    "symml._fit._fit",
    "symml._fit._result",
    "symml._latent._autoencoder",
    "symml._latent._frames",
    "symml._latent._result",
    "symml._latent._sindy",
    "symml._mechanics._minimize",
    "symml._mechanics._steady_state",
    "symml._mechanics._symplectic",
    "symml._pinn._residual",
    "symml._solve._core",
    "symml._solve._simulate",
    "symml._solve._solver_fn",
    "symml._train._optimizers",
    "symml._train._train",
    "symml._trajectory",
}

MODULES = [
    pytest.param(name, marks=pytest.mark.slow) if name in PIPELINES else name
    for name in sorted(
        m.name
        for m in pkgutil.walk_packages(symml.__path__, "symml.")
        if not m.name.startswith("symml.bench") and not m.name.endswith("__main__")
    )
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
