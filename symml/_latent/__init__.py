"""Equations from images: rendered frames, autoencoders, the SINDy autoencoder (`discover_latent`).

`frames` renders a simulated trajectory as images with exact time derivatives (chain rule),
`autoencoder` compresses frames and scans the latent size, and `discover_latent` trains an
encoder, a decoder and a sparse latent law together (Champion et al. 2019), returning the law
as a symml `Model`.
"""

from ._autoencoder import Autoencoder as Autoencoder
from ._autoencoder import autoencoder as autoencoder
from ._frames import Blob as Blob
from ._frames import Frames as Frames
from ._frames import frames as frames
from ._result import LatentResult as LatentResult
from ._sindy import LatentWeights as LatentWeights
from ._sindy import discover_latent as discover_latent
