"""Networks dspjax's agents train (Flax modules), each with its pruning declaration."""

from dspjax.networks.mlp import MLP, init_layers, orthogonal, orthogonal_kernel

__all__ = ["MLP", "init_layers", "orthogonal", "orthogonal_kernel"]
