"""Data: datasets of trajectories bound to models by symbol or name, and derivative estimates."""

from ._dataset import NOISE_KINDS as NOISE_KINDS
from ._dataset import Dataset as Dataset
from ._dataset import resolve_key as resolve_key
from ._derivatives import DifferentiationError as DifferentiationError
from ._derivatives import FiniteDifference as FiniteDifference
from ._derivatives import SavitzkyGolay as SavitzkyGolay
from ._derivatives import SmoothingSpline as SmoothingSpline
from ._derivatives import Weak as Weak
from ._derivatives import derivatives as derivatives
from ._derivatives import get_method as get_method
from ._derivatives import time_scale as time_scale
from ._series import Series as Series
from ._series import key_name as key_name
