"""Physics-informed networks: `pinn` (a network trained on a model's equations), `PINNResult`."""

from ._pinn import pinn as pinn
from ._result import PINNResult as PINNResult
