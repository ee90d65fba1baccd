"""Solve: the one solve core, its options, ``simulate``, solver choice, the pure `solver_fn`."""

from ._core import CoreSolution as CoreSolution
from ._core import check_result as check_result
from ._core import integrate as integrate
from ._options import DEFAULT_ADJOINT as DEFAULT_ADJOINT
from ._options import IMPLICIT as IMPLICIT
from ._options import SOLVERS as SOLVERS
from ._options import SolveOptions as SolveOptions
from ._options import TerminalEvent as TerminalEvent
from ._options import get_solver as get_solver
from ._options import resolve_solver as resolve_solver
from ._simulate import simulate as simulate
from ._solver_fn import SolverFn as SolverFn
from ._solver_fn import solver_fn as solver_fn
from ._stiffness import STIFFNESS_THRESHOLD as STIFFNESS_THRESHOLD
from ._stiffness import choose_solver as choose_solver
from ._stiffness import stiffness_index as stiffness_index
