"""Analytic: closed forms under the worker's time budget, derived quantities, closed-form flows."""

from ._bridge import NoClosedForm as NoClosedForm
from ._closed_form import ANALYTIC_TIMEOUT as ANALYTIC_TIMEOUT
from ._closed_form import AUTO_TIMEOUT as AUTO_TIMEOUT
from ._closed_form import AnalyticSolution as AnalyticSolution
from ._closed_form import solve_analytic as solve_analytic
from ._closed_form import structure as structure
from ._derived import at as at
from ._derived import eliminate_t as eliminate_t
from ._derived import roots as roots
from ._derived import when as when
from ._evaluate import ClosedForm as ClosedForm
from ._evaluate import ExprFunction as ExprFunction
from ._evaluate import to_jax as to_jax
from ._flow import EVENT_GRID as EVENT_GRID
from ._flow import closed_form_trajectory as closed_form_trajectory
from ._flow import flow_map as flow_map
