"""``symml.bench``: symbolic against neural fits on the same data, with a report.

``sm.bench.run(problems, methods, noise, seeds, out=...)`` simulates noisy data for every
problem, noise level and seed, recovers a model with every method, integrates it over the
training window, a later extrapolation window and from a second initial condition, and
writes ``results.csv``, ``results.json`` and ``report.md`` (with figures) into ``out``.
``symml bench --quick`` does the same from the command line.

>>> import symml as sm
>>> sm.bench.problems()[:2]
('lotka_volterra', 'pendulum')
>>> sm.bench.methods()[:3]
('true_form', 'sindy', 'operon')
"""

from .methods import (
    Method,
    NeuralODE,
    Operon,
    Outcome,
    Sindy,
    TrueForm,
    UdeSindy,
    UniversalODE,
    get_method,
    methods,
    register_method,
)
from .metrics import score, structure
from .presets import PRESETS, preset
from .problems import BenchError, Problem, get_problem, make_problem, problems, register_problem
from .report import load_results
from .runner import COLUMNS, BenchWarning, run, run_one

presets = PRESETS

__all__ = [
    "BenchError",
    "BenchWarning",
    "COLUMNS",
    "Method",
    "NeuralODE",
    "Operon",
    "Outcome",
    "PRESETS",
    "Problem",
    "Sindy",
    "TrueForm",
    "UdeSindy",
    "UniversalODE",
    "get_method",
    "get_problem",
    "load_results",
    "make_problem",
    "methods",
    "preset",
    "presets",
    "problems",
    "register_method",
    "register_problem",
    "run",
    "run_one",
    "score",
    "structure",
]
