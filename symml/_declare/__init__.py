"""Declare: symbols, neural placeholders, the immutable Model, events, and the one binder of values."""

from ._bind import batch_shape as batch_shape
from ._bind import bind_ics as bind_ics
from ._bind import bind_params as bind_params
from ._bind import bind_vector as bind_vector
from ._bind import default_vector as default_vector
from ._bind import pack as pack
from ._bind import save_grid as save_grid
from ._bind import stack as stack
from ._bind import stack_members as stack_members
from ._bind import time_grid as time_grid
from ._event import Event as Event
