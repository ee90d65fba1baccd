"""Neural terms: the equinox networks that stand behind ``sm.neural`` placeholders.

A placeholder (see `symml.neural`) only declares the architecture; the weights live in
a `NeuralNetwork`, an ``eqx.Module`` whose MLP leaves are what training updates. The
input standardisation (``in_shift``, ``in_scale``) and the output multiplier (``out_scale``)
are fixed arrays: they are set once (from the data domain, by `symml.train`) and never
trained.

>>> import jax, symml as sm
>>> u, v = sm.states("u v")
>>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
>>> net = init_network(U.spec, jax.random.PRNGKey(0))
>>> net(jax.numpy.ones(2)).shape
(2,)
>>> n_parameters(net)
42
"""

from __future__ import annotations

from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._declare._symbols import NeuralSpec

#: Activation name -> function. Names (not callables) are stored so models save as data.
ACTIVATION_FUNCTIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
    "sin": jnp.sin,
}


class NeuralNetwork(eqx.Module):
    """An MLP from the placeholder's inputs to its outputs.

    ``net(x)`` computes ``out_scale * mlp((x - in_shift) / in_scale)`` for one input vector
    ``x`` of length ``len(spec.inputs)``; use `batched` for arrays of shape
    ``(n, n_inputs)``. Only the MLP is trainable (`trainable_filter`).
    """

    mlp: eqx.nn.MLP
    in_shift: jax.Array
    in_scale: jax.Array
    out_scale: jax.Array
    spec: NeuralSpec = eqx.field(static=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        shift = jax.lax.stop_gradient(self.in_shift)
        scale = jax.lax.stop_gradient(self.in_scale)
        out = self.mlp((x - shift) / scale)
        return jax.lax.stop_gradient(self.out_scale) * out

    def batched(self, x: jax.Array) -> jax.Array:
        """Evaluate on a batch: ``(n, n_inputs) -> (n, n_outputs)`` (a single vector works too)."""
        x = jnp.asarray(x, dtype=self.in_shift.dtype)
        if x.ndim == 1:
            return self(x)
        return jax.vmap(self)(x)

    def with_input_scaling(self, shift, scale) -> NeuralNetwork:
        """A copy whose inputs are standardised as ``(x - shift) / scale``."""
        shift = jnp.asarray(shift, dtype=self.in_shift.dtype).reshape(self.in_shift.shape)
        scale = jnp.asarray(scale, dtype=self.in_scale.dtype).reshape(self.in_scale.shape)
        return eqx.tree_at(lambda n: (n.in_shift, n.in_scale), self, (shift, scale))

    def with_output_scale(self, out_scale) -> NeuralNetwork:
        """A copy whose outputs are multiplied by ``out_scale`` (a scalar or one per output)."""
        s = jnp.broadcast_to(jnp.asarray(out_scale, dtype=self.out_scale.dtype), self.out_scale.shape)
        return eqx.tree_at(lambda n: n.out_scale, self, s)


def _seed_sequence(key) -> np.random.SeedSequence:
    """A NumPy seed sequence from a JAX key (raw ``uint32`` or typed), without device work."""
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.SeedSequence([int(x) for x in np.asarray(key).ravel()])


def init_network(
    spec: NeuralSpec, key: jax.Array, dtype=None, *, last_layer_scale: float = 1.0
) -> NeuralNetwork:
    """Fresh weights for ``spec``, reproducible from ``key``.

    Weights and biases of each layer are drawn uniformly from ``(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    (equinox's default). They are drawn with NumPy from a seed derived from ``key``: building a
    network then costs microseconds instead of compiling a random-number kernel per layer shape.
    ``last_layer_scale`` multiplies the weights and bias of the output layer: a small value
    (``sm.train`` uses `INIT_LAST_LAYER_SCALE`) makes a universal ODE start close to its
    physics-only part.
    """
    return _init(spec, _seed_sequence(key), dtype, last_layer_scale)


def _init(spec: NeuralSpec, seq: np.random.SeedSequence, dtype, last_layer_scale: float) -> NeuralNetwork:
    dtype = dtype or jnp.result_type(float)
    skeleton = eqx.filter_eval_shape(
        eqx.nn.MLP,
        in_size=len(spec.inputs),
        out_size=spec.outputs,
        width_size=spec.width,
        depth=spec.depth,
        activation=ACTIVATION_FUNCTIONS[spec.activation],
        final_activation=ACTIVATION_FUNCTIONS[spec.final_activation],
        key=jax.random.PRNGKey(0),
        dtype=dtype,
    )
    rng = np.random.default_rng(seq)
    weights, biases = [], []
    n_layers = len(skeleton.layers)
    for i, layer in enumerate(skeleton.layers):
        fan_out, fan_in = layer.weight.shape
        lim = 1.0 / np.sqrt(fan_in)
        scale = last_layer_scale if i == n_layers - 1 else 1.0
        weights.append(jnp.asarray(rng.uniform(-lim, lim, (fan_out, fan_in)) * scale, dtype))
        biases.append(jnp.asarray(rng.uniform(-lim, lim, (fan_out,)) * scale, dtype))
    mlp = eqx.tree_at(
        lambda m: [x for layer in m.layers for x in (layer.weight, layer.bias)],
        skeleton,
        [x for pair in zip(weights, biases) for x in pair],
    )
    n_in = len(spec.inputs)
    return NeuralNetwork(
        mlp,
        jnp.zeros(n_in, dtype),
        jnp.ones(n_in, dtype),
        jnp.ones(spec.outputs, dtype),
        spec,
    )


#: Output-layer scale used by ``sm.train`` for fresh networks: the network's initial
#: contribution is about a tenth of a unit-scale term, so training starts near the known physics.
INIT_LAST_LAYER_SCALE = 0.1


def init_networks(
    specs: Iterable[NeuralSpec], key: jax.Array, *, last_layer_scale: float = 1.0
) -> dict[str, NeuralNetwork]:
    """Fresh networks for several specs (sorted by name); each draws from its own child seed of ``key``."""
    specs = sorted(specs, key=lambda s: s.name)
    children = _seed_sequence(key).spawn(len(specs))
    return {s.name: _init(s, c, None, last_layer_scale) for s, c in zip(specs, children)}


def trainable_filter(net: NeuralNetwork):
    """A filter spec (same tree, booleans) that selects the MLP's arrays: what training updates.

    Use with ``eqx.partition(net, trainable_filter(net))``.
    """
    spec = jax.tree_util.tree_map(lambda _: False, net)
    return eqx.tree_at(lambda n: n.mlp, spec, replace=jax.tree_util.tree_map(eqx.is_array, net.mlp))


def n_parameters(net: NeuralNetwork) -> int:
    """Number of trainable weights (MLP weights and biases)."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(eqx.filter(net.mlp, eqx.is_array)))


def weight_penalty(trainable, l1: float | jax.Array = 0.0, l2: float | jax.Array = 0.0) -> jax.Array:
    """``l1 * sum|w| + l2 * sum w^2`` over the weight matrices (not the biases) of a tree of MLPs.

    ``l1`` and ``l2`` may be traced values (``sm.train`` passes them as data, so changing them
    does not recompile).
    """
    total = jnp.zeros(())
    for layer in _linear_layers(trainable):
        w = layer.weight
        if w is None:
            continue
        total = total + l1 * jnp.sum(jnp.abs(w)) + l2 * jnp.sum(w * w)
    return total


def _linear_layers(tree) -> list:
    return [
        x
        for x in jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, eqx.nn.Linear))
        if isinstance(x, eqx.nn.Linear)
    ]
