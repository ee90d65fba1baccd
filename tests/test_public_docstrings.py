"""Every public function and class of ``symml`` documents itself: a runnable example and its errors.

The examples themselves run in tests/test_docs.py (doctests); here only their presence is checked, with
the list of what is missing in the failure message so it can be fixed in one go.
"""

import inspect

import symml as sm

# Exceptions and warnings document themselves by their names and messages; constants have no docstring.
_SKIP_KINDS = (BaseException, Warning)


def _public_callables():
    for name in sm.__all__:
        obj = getattr(sm, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, _SKIP_KINDS):
            continue
        yield name, obj


def test_every_public_callable_has_an_example():
    missing = [name for name, obj in _public_callables() if ">>>" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"no runnable example (>>>) in the docstring of: {', '.join(sorted(missing))}"


def test_every_public_function_says_what_it_raises():
    missing = [
        name
        for name, obj in _public_callables()
        if inspect.isfunction(obj) and "Raises:" not in (inspect.getdoc(obj) or "")
    ]
    assert not missing, f"no Raises: section in the docstring of: {', '.join(sorted(missing))}"
