"""Named benchmark presets: the grids behind ``symml bench --quick``, ``--full`` and ``--preset``.

* ``quick``: two problems; the symbolic methods, the universal ODE distilled (``ude_sindy``)
  and kept as it is (``ude``), and a purely neural baseline (``neural_ode``), so that symbolic
  against neural shows in the quick table.
* ``full``: every problem and method, three noise levels, three seeds.
* ``ude-robustness``: the universal ODE of the README (Lotka–Volterra, 21 points on [0, 5],
  the interactions learned by a 2→32→32→2 network, distilled with SINDy, the new constants
  refitted) over seeds × noise levels, each seed with its own initial values drawn from
  [0.5, 5]²; a success is exactly the two interaction terms (report: recovery rates,
  coefficient errors and a figure of rate against noise). ``--seeds 500`` is the size of the
  published Julia study.

>>> from symml.bench.presets import PRESETS
>>> sorted(PRESETS)
['full', 'quick', 'ude-robustness']
"""

from __future__ import annotations

from typing import Any

from ..errors import UnknownNameError, suggest
from .methods import NeuralODE, Operon, Sindy, TrueForm, UdeSindy, UniversalODE

__all__ = ["PRESETS", "preset"]

#: ``{name: {"problems", "methods", "noise", "seeds"}}``, the arguments of `symml.bench.run`.
PRESETS: dict[str, dict[str, Any]] = {
    # a few minutes on 2 cores: two problems, the symbolic methods, short UDE / neural trainings
    "quick": {
        "problems": ("lotka_volterra", "pendulum"),
        "methods": (
            TrueForm(),
            Sindy(),
            UdeSindy(steps=500, polish=200),
            UniversalODE(steps=500, polish=200),
            NeuralODE(steps=500, polish=200),
        ),
        "noise": (0.0, 0.05),
        "seeds": (0,),
    },
    # everything: every problem and method, three noise levels, three seeds (hours on 2 cores)
    "full": {
        "problems": (
            "lotka_volterra",
            "pendulum",
            "projectile_stokes",
            "projectile_newton",
            "duffing",
            "van_der_pol",
            "lorenz",
        ),
        "methods": (TrueForm(), Sindy(), Operon(), UdeSindy(), UniversalODE(), NeuralODE()),
        "noise": (0.0, 0.01, 0.05),
        "seeds": (0, 1, 2),
    },
    # the README universal ODE (the `symml demo` training: Adam 100 + L-BFGS 700) over random
    # initial values; about 20 s a run on 2 cores
    "ude-robustness": {
        "problems": ("lotka_volterra_sparse",),
        "methods": (UdeSindy(steps=100, polish=700, refit_known=False),),
        "noise": (0.0, 0.025, 0.05, 0.1),
        "seeds": tuple(range(10)),
    },
}


def preset(name: str) -> dict[str, Any]:
    """A copy of the preset called ``name``."""

    if name not in PRESETS:
        raise UnknownNameError(
            f"No bench preset {name!r}; choose one of {', '.join(PRESETS)}." + suggest(name, PRESETS)
        )
    return dict(PRESETS[name])
