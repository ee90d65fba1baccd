"""Mechanics from energies: Lagrangian and Hamiltonian models, symplectic solvers, equilibria.

It reads only from `symml._declare` and `symml._compile`, so the solve stage can register the
symplectic solvers by name (``solver="leapfrog"``) without an import cycle.
"""

from ._derivative import NeuralDerivative as NeuralDerivative
from ._derivative import differentiate as differentiate
from ._hamiltonian import hamiltonian as hamiltonian
from ._lagrangian import lagrangian as lagrangian
from ._minimize import Minimum as Minimum
from ._minimize import minimize as minimize
from ._steady_state import SteadyState as SteadyState
from ._steady_state import steady_state as steady_state
from ._symplectic import AbstractSymplecticSolver as AbstractSymplecticSolver
from ._symplectic import ImplicitMidpoint as ImplicitMidpoint
from ._symplectic import Leapfrog as Leapfrog
from ._symplectic import Yoshida4 as Yoshida4
from ._symplectic import split_states as split_states
