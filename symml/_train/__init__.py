"""Train: universal ODEs trained through the solver (`train`), its option objects, the result."""

from ._options import Checkpoint as Checkpoint
from ._options import Loss as Loss
from ._options import Shooting as Shooting
from ._options import Solve as Solve
from ._phases import LBFGS as LBFGS
from ._phases import Adam as Adam
from ._phases import AdamW as AdamW
from ._phases import Optax as Optax
from ._result import History as History
from ._result import Trained as Trained
from ._result import TrainingError as TrainingError
from ._result import TrainingWarning as TrainingWarning
from ._train import train as train
from ._ude_problem import UDEProblem as UDEProblem
