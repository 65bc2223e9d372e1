"""Where DSP finds an MLP in any parameter tree: a declared chain of dense layers (METHOD.md §1).

A ``DenseChain`` names, input to output, the dense layers of one network inside a parameter tree
(a Flax ``params`` dict, or a dict of several networks' trees): each path leads to a
``{"kernel": (n_in, n_out), "bias": (n_out,)}`` dict, and layer ``l + 1`` takes the output of
layer ``l`` after an elementwise ``activation``. Hidden layer ``l`` of METHOD.md §1 is the output
of layer ``l`` and the input of layer ``l + 1``; the last layer's outputs are never pruned.

Every pure function of ``dspjax.pruning`` works on the chain's *layers*: the tuple of those dicts,
``chain_layers(params, chain)``. ``chain_apply`` is that tuple's forward pass, the one the compact
network of §6 runs.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}

Path = tuple  # keys from the root of a parameter tree to one dense layer's {"kernel", "bias"}


@dataclasses.dataclass(frozen=True)
class DenseChain:
    """One network's dense layers in a parameter tree, pruned as one MLP.

    ``mask_of``: the name of another declared network whose neuron masks this one uses instead of
    its own (a target network: same shapes, never scored or pruned on its own).
    """
    layers: tuple[Path, ...]
    activation: str = "tanh"
    mask_of: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(tuple(p) for p in self.layers))
        if len(self.layers) < 2:
            raise ValueError(f"DenseChain needs at least 2 dense layers (a hidden layer to prune), "
                             f"got {len(self.layers)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: must be one of {', '.join(ACTIVATIONS)}")


def dense_chain(prefix: Path, num_layers: int, activation: str = "tanh", mask_of=None,
                name: str = "Dense_{}", first: int = 0) -> DenseChain:
    """The chain of Flax's auto-named ``Dense_{first} .. Dense_{first + n - 1}`` under ``prefix``
    (e.g. ``("params",)``, or ``("actor", "params")`` in a dict of networks); ``name`` formats each
    layer's key from its index. Flax numbers a module's Dense layers in the order they are created:
    a critic built after a 3-layer actor is ``dense_chain(("params",), 3, first=3)``."""
    return DenseChain(tuple(tuple(prefix) + (name.format(i),) for i in range(first, first + num_layers)),
                      activation, mask_of)


def _get(tree, path: Path):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree, path: Path, value):
    if not path:
        return value
    return {**tree, path[0]: _set(tree[path[0]], path[1:], value)}


def chain_layers(params, chain: DenseChain) -> tuple:
    """The chain's layers ``({"kernel", "bias"}, ...)``, input to output, read out of ``params``."""
    return tuple({"kernel": layer["kernel"], "bias": layer["bias"]}
                 for layer in (_get(params, path) for path in chain.layers))


def with_chain_layers(params, chain: DenseChain, layers):
    """``params`` with the chain's layers replaced by ``layers`` (a new tree; nothing mutated)."""
    for path, layer in zip(chain.layers, layers):
        params = _set(params, path, {**_get(params, path), **layer})
    return params


def chain_apply(layers, x, activation: str = "tanh", probes=None):
    """Forward pass of a chain's layers. Returns ``(output, hiddens)``, the hiddens being the
    post-activation outputs of every hidden layer (plus ``probes`` when given: zeros that only
    carry ``∂/∂h``)."""
    act = ACTIVATIONS[activation]
    hiddens = []
    h = x
    for i, layer in enumerate(layers[:-1]):
        h = act(h @ layer["kernel"] + layer["bias"])
        if probes is not None:
            h = h + probes[i]
        hiddens.append(h)
    return h @ layers[-1]["kernel"] + layers[-1]["bias"], tuple(hiddens)


def output_jacobians(layers, x, activation: str = "tanh"):
    """Per-sample ``∂f(x)/∂h_l`` for every hidden layer, each of shape (batch, n_out, n_l)."""
    def single(xi):
        probes = tuple(jnp.zeros(layer["bias"].shape[-1:]) for layer in layers[:-1])
        return jax.jacrev(lambda p: chain_apply(layers, xi, activation, p)[0])(probes)
    return jax.vmap(single)(x)
