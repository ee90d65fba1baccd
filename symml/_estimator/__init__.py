"""Amortized parameter estimation: `estimator` (a network from observed curves to parameters)."""

from ._estimator import Estimate as Estimate
from ._estimator import Estimator as Estimator
from ._estimator import estimator as estimator
