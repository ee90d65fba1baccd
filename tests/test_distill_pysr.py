"""PySR adapter: the message when PySR is missing or its Julia runtime cannot start (both
detected for real), and the adapter's conversion with a stand-in PySR module."""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pandas as pd
import pytest
import sympy as sp

import symml as sm
from symml.distill import PySR, get_backend
from symml.distill.pysr import PySROptionError, load_pysr

u, v = sm.states("u v")


@pytest.fixture
def no_pysr(monkeypatch):
    """PySR absent (whatever this machine has): ``None`` in sys.modules blocks the import."""
    monkeypatch.setitem(sys.modules, "pysr", None)


class _FailingJulia(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An installed 'pysr' whose import fails the way juliacall does offline."""

    def find_spec(self, name, path=None, target=None):
        if name == "pysr":
            return importlib.machinery.ModuleSpec("pysr", self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise RuntimeError("juliapkg: could not download Julia 1.10 (no network connection)")


@pytest.fixture
def broken_julia(monkeypatch):
    monkeypatch.delitem(sys.modules, "pysr", raising=False)
    finder = _FailingJulia()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    yield
    sys.modules.pop("pysr", None)


def test_message_when_pysr_is_not_installed(no_pysr):
    assert importlib.util.find_spec("pysr") is None
    X = np.random.default_rng(0).uniform(size=(20, 2))
    with pytest.raises(sm.BackendUnavailableError, match="the 'pysr' package is not installed") as err:
        get_backend("pysr").fit(X, X[:, 0], [u, v])
    msg = str(err.value)
    assert "pip install 'symml[pysr]'" in msg and "Julia" in msg
    assert 'backend="sindy"' in msg and 'backend="operon"' in msg
    assert isinstance(err.value, ImportError)  # also catchable as an ImportError


def test_message_when_julia_cannot_start(broken_julia):
    with pytest.raises(sm.BackendUnavailableError, match="installed but importing it failed") as err:
        load_pysr()
    msg = str(err.value)
    assert "Julia runtime is unavailable" in msg
    assert "RuntimeError: juliapkg: could not download Julia 1.10 (no network connection)" in msg
    assert "needs network access" in msg
    assert 'backend="sindy"' in msg and 'backend="operon"' in msg
    assert isinstance(err.value.__cause__, RuntimeError)


def test_this_machine_reports_the_real_reason():
    """Without monkeypatching: either PySR works here, or the error names why it does not."""
    try:
        load_pysr()
    except sm.BackendUnavailableError as err:
        assert "not installed" in str(err) or "Julia runtime is unavailable" in str(err)


class _FakeRegressor:
    """Stands in for pysr.PySRRegressor: least squares on two fixed candidate forms, reported
    the way PySR does (an equations_ table and sympy(i))."""

    last_kwargs: dict = {}

    def __init__(self, **kwargs):
        type(self).last_kwargs = kwargs

    def fit(self, X, y, variable_names):
        x0, x1 = sp.symbols(variable_names)
        c = float(np.mean(y))
        k = float(np.linalg.lstsq((X[:, 0] * X[:, 1])[:, None], y, rcond=None)[0][0])
        self._exprs = [sp.Float(c), sp.Float(k) * x0 * x1]
        self.equations_ = pd.DataFrame({"complexity": [1, 3], "loss": [1.0, 0.0], "score": [0.0, 5.0]})
        return self

    def sympy(self, index=None):
        return self._exprs[-1 if index is None else index]


def test_adapter_with_a_stand_in_pysr(monkeypatch):
    fake = types.ModuleType("pysr")
    fake.PySRRegressor = _FakeRegressor
    monkeypatch.setitem(sys.modules, "pysr", fake)
    X = np.random.default_rng(0).uniform(0.5, 2.0, (50, 2))
    y = -0.9 * X[:, 0] * X[:, 1]
    found = PySR(niterations=5, random_state=3).fit(X, y, [u, v])
    assert found.backend == "pysr"
    assert found.expr.free_symbols == {sm.t} and found.expr.has(u) and found.expr.has(v)
    assert float(found.coefficients[u * v]) == pytest.approx(-0.9, abs=1e-12)
    assert found.mse < 1e-25 and found.complexity == 3
    assert [c.complexity for c in found.front] == [1, 3]
    kw = _FakeRegressor.last_kwargs
    assert kw["deterministic"] is True and kw["parallelism"] == "serial" and kw["random_state"] == 3
    assert kw["niterations"] == 5 and kw["model_selection"] == "best"


def test_pysr_option_errors():
    with pytest.raises(PySROptionError, match=r"Unknown PySR selection 'bestt'.*Did you mean 'best'"):
        PySR(selection="bestt")
