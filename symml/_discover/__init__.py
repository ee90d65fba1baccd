"""Discover: equations straight from data (derivative estimates or the weak form, a library, a backend)."""

from ._discover import Discovery as Discovery
from ._discover import DiscoveryError as DiscoveryError
from ._discover import discover as discover
from ._discover import discover_system as discover_system
