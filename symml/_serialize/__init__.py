"""Save and load symml objects as JSON, without executing anything from the file.

Expressions are written as explicit trees whose node types come from a fixed whitelist
(arithmetic, the SymPy -> JAX function table, states, parameters, neural terms); loading rebuilds
them node by node. There is no ``eval``, no ``sympify`` of file text and no pickle. Floats are
stored exactly (mpmath mantissa/exponent for SymPy floats, raw little-endian bytes for arrays),
so a round trip is bit-exact.

>>> import symml as sm, tempfile, os
>>> lv = sm.zoo.lotka_volterra()
>>> path = os.path.join(tempfile.mkdtemp(), "lv.json")
>>> sm.save(lv, path)
>>> sm.load(path) == lv
True
"""

from .._file_limits import FileFormatError as FileFormatError
from ._expr import decode_expr as decode_expr
from ._expr import decode_spec as decode_spec
from ._expr import decode_value as decode_value
from ._expr import encode_expr as encode_expr
from ._expr import encode_spec as encode_spec
from ._files import FORMAT_VERSION as FORMAT_VERSION
from ._files import decode_array as decode_array
from ._files import decode_model as decode_model
from ._files import decode_module as decode_module
from ._files import decode_network as decode_network
from ._files import encode_array as encode_array
from ._files import encode_model as encode_model
from ._files import encode_module as encode_module
from ._files import encode_network as encode_network
from ._files import from_json_dict as from_json_dict
from ._files import load as load
from ._files import register as register
from ._files import save as save
from ._files import to_json_dict as to_json_dict
