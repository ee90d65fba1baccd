"""Surrogates and inverse design: `surrogate` (an MLP of a function of a few inputs), `invert`
(an encoder trained through a frozen surrogate), and the Adam loop they share."""

from ._adam import minimize_adam as minimize_adam
from ._adam import mlp as mlp
from ._invert import Encoder as Encoder
from ._invert import invert as invert
from ._surrogate import Surrogate as Surrogate
from ._surrogate import surrogate as surrogate
