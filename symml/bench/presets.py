"""Named benchmark presets: the grids behind ``symml bench --quick`` and ``--full``.

>>> from symml.bench.presets import PRESETS
>>> sorted(PRESETS)
['full', 'quick']
"""

from __future__ import annotations

from typing import Any

from ..errors import UnknownNameError, suggest
from .methods import NeuralODE, Operon, Sindy, TrueForm, UdeSindy

__all__ = ["PRESETS", "preset"]

#: ``{name: {"problems", "methods", "noise", "seeds"}}``, the arguments of `symml.bench.run`.
PRESETS: dict[str, dict[str, Any]] = {
    # a few minutes on 2 cores: two problems, the symbolic methods and a short UDE training
    "quick": {
        "problems": ("lotka_volterra", "pendulum"),
        "methods": (TrueForm(), Sindy(), UdeSindy(steps=500, polish=200)),
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
        "methods": (TrueForm(), Sindy(), Operon(), UdeSindy(), NeuralODE()),
        "noise": (0.0, 0.01, 0.05),
        "seeds": (0, 1, 2),
    },
}


def preset(name: str) -> dict[str, Any]:
    """A copy of the preset called ``name``."""

    if name not in PRESETS:
        raise UnknownNameError(
            f"No bench preset {name!r}; choose one of {', '.join(PRESETS)}." + suggest(name, PRESETS)
        )
    return dict(PRESETS[name])
