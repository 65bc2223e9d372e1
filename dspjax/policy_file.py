"""An exported policy, read back with NumPy alone (no JAX): what runs on the deployed computer.

``dspjax export`` writes a member's *compact* policy network (pruned neurons physically removed,
METHOD.md §6) as ``<name>.npz`` holding ``layer0_kernel``, ``layer0_bias``, ``layer1_kernel``, ...
(float32; kernel ``(n_in, n_out)``, the layer computes ``h @ kernel + bias``), and beside it the
manifest ``<name>.npz.json``: layer sizes, hidden activation, observation size, action space,
compression figures, and the member, environment and agent config it came from.

Every hidden layer applies the activation; the last layer is linear. For discrete actions its
outputs are the policy's action scores (PPO's logits, DQN's Q-values) and the greedy action is
their argmax; for box actions (the manifest's ``outputs``) they are either the mean action
(``mean_action``, PPO), the greedy action being the mean clipped to the manifest's
``action_space`` bounds, or ``squashed_mean_and_log_std`` (SAC's tanh-squashed Gaussian: ``dims``
means before tanh, then ``dims`` log-std pre-activations), the greedy action being
``low + (tanh(mean) + 1) / 2 · (high − low)``.

Nothing here unpickles: arrays through ``np.load(..., allow_pickle=False)``, the manifest as JSON.
This module imports only NumPy and the standard library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

FORMAT = "dspjax-policy"
FORMAT_VERSION = 1
MEAN_ACTION, SQUASHED_MEAN_AND_LOG_STD = "mean_action", "squashed_mean_and_log_std"  # box outputs
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0)}


def manifest_path(path) -> Path:
    """The manifest written beside the exported file ``path``: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def layer_names(n_layers: int) -> list[str]:
    """The array names of the ``.npz`` file, kernel then bias of each layer in order."""
    return [f"layer{i}_{part}" for i in range(n_layers) for part in ("kernel", "bias")]


def forward(layers, obs, activation: str = "tanh") -> np.ndarray:
    """The network's outputs for ``obs`` (one observation ``(n_in,)`` or a batch ``(B, n_in)``):
    ``activation`` after every layer but the last. ``layers``: ``[(kernel, bias), ...]``."""
    act = ACTIVATIONS[activation]
    h = np.asarray(obs, np.float32)
    for kernel, bias in layers[:-1]:
        h = act(h @ kernel + bias)
    kernel, bias = layers[-1]
    return h @ kernel + bias


class Policy(NamedTuple):
    """A loaded policy: ``policy(obs)`` gives the network's outputs (action scores or the mean
    action), ``policy.act(obs)`` the greedy action(s); ``manifest`` is the JSON manifest as a dict."""
    layers: list
    activation: str
    manifest: dict

    def __call__(self, obs) -> np.ndarray:
        return forward(self.layers, obs, self.activation)

    def act(self, obs):
        space = self.manifest["action_space"]
        if space["type"] == "box":
            low, high = np.asarray(space["low"], np.float32), np.asarray(space["high"], np.float32)
            if self.manifest.get("outputs") == SQUASHED_MEAN_AND_LOG_STD:
                return low + 0.5 * (np.tanh(self(obs)[..., :low.size]) + 1.0) * (high - low)
            return np.clip(self(obs), low, high)
        return np.argmax(self(obs), axis=-1)


def load_policy(path) -> Policy:
    """The policy exported to ``path`` (the ``.npz`` file; its manifest is read from beside it)."""
    path = Path(path)
    manifest = json.loads(manifest_path(path).read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{manifest_path(path)}: not a {FORMAT} manifest of version {FORMAT_VERSION}")
    n_layers = len(manifest["layer_sizes"]) - 1
    with np.load(path, allow_pickle=False) as arrays:
        layers = [(arrays[f"layer{i}_kernel"], arrays[f"layer{i}_bias"]) for i in range(n_layers)]
    return Policy(layers, manifest["activation"], manifest)
