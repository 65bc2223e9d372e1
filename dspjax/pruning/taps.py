"""``∂L/∂h`` of every declared hidden layer, from the loss's own backward pass (METHOD.md §2).

The Taylor importance ``E |h · ∂L_RL/∂h|`` needs, per sample, each hidden activation ``h`` and the
gradient of the RL loss with respect to it. ``value_and_grad`` gets both from any loss that runs
Flax modules, unchanged: while the loss runs, a ``flax.linen.intercept_methods`` interceptor
watches every ``nn.Dense`` call. A call whose kernel *is* the kernel of layer ``l + 1`` of a
declared chain (the very array handed to the loss, so a target network's or a stop-gradient copy's
call is not confused with it) has hidden layer ``l`` as its input: the interceptor records that
input and adds a zero *probe* to it, and the gradient with respect to the probe is ``∂L/∂h``
(what ``Module.perturb`` does, without editing the module). Only the first call of each layer in
the loss is tapped: the one on the training batch, when a loss also runs the network elsewhere
(DQN's double-Q target). The loss must hand the module the very arrays it is given: a loss that
casts or copies the parameters first (``astype``, ``tree.map``) is refused, as it runs no declared
layer.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dspjax.pruning.chain import _get


def _tapped_layers(params, networks: dict) -> dict:
    """``id(kernel) -> (network, l)`` for every dense layer of every scored network (networks with
    their own mask): the input of layer ``l`` is the network's input for ``l = 0`` and hidden layer
    ``l − 1`` after it."""
    out = {}
    for name, chain in networks.items():
        if chain.mask_of is None:
            for l, path in enumerate(chain.layers):
                out[id(_get(params, path)["kernel"])] = (name, l)
    return out


def _run_tapped(loss_fn, params, args, networks, probes):
    """Runs ``loss_fn(params, *args)`` with the taps on; returns ``(value, inputs)``, the inputs of
    every declared layer as ``{network: {l: x}}`` (first call of each), probes added to those of
    layers ``l ≥ 1`` (the hidden layers) where given."""
    tapped = _tapped_layers(params, networks)
    hiddens = {}

    def interceptor(next_fun, call_args, kwargs, context):
        if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
            kernel = context.module.scope.get_variable("params", "kernel")
            where = tapped.get(id(kernel))
            if where is not None and where[1] not in hiddens.setdefault(where[0], {}):
                net, l = where
                h = call_args[0]
                hiddens[net][l] = h
                if probes is not None and l > 0:
                    call_args = (h + probes[net][l - 1],) + tuple(call_args[1:])
        return next_fun(*call_args, **kwargs)

    with nn.intercept_methods(interceptor):
        value = loss_fn(params, *args)
    return value, hiddens


def value_and_grad(loss_fn, networks: dict, has_aux: bool = False):
    """Like ``jax.value_and_grad(loss_fn, has_aux=has_aux)`` (gradients with respect to the first
    argument, the parameter tree the ``networks`` are declared in), returning
    ``(value, grads, taps)`` for every network with its own mask: ``taps[network] = (inputs,
    hiddens, hidden_grads)``, the network's input and one ``(batch..., n_l)`` array per hidden
    layer. ``ValueError`` when the loss never runs a declared layer on the parameters it is given.
    """
    def run(params, *args):
        shapes = jax.eval_shape(lambda p: _run_tapped(loss_fn, p, args, networks, None)[1], params)
        missing = [(n, l) for n, chain in networks.items() if chain.mask_of is None
                   for l in range(len(chain.layers)) if l not in shapes.get(n, {})]
        if missing:
            raise ValueError(f"the loss never runs dense layer(s) {missing} (network, layer) on the "
                             "parameters it is given; declare the chains the loss applies")
        probes = {n: {l - 1: jnp.zeros(s.shape, s.dtype) for l, s in layers.items() if l > 0}
                  for n, layers in shapes.items()}

        def with_probes(p, pr):
            value, hiddens = _run_tapped(loss_fn, p, args, networks, pr)
            loss, aux = value if has_aux else (value, None)
            return loss, (aux, hiddens)

        (loss, (aux, inputs)), (grads, probe_grads) = jax.value_and_grad(
            with_probes, argnums=(0, 1), has_aux=True)(params, probes)
        taps = {n: (inputs[n][0], tuple(inputs[n][l] for l in range(1, len(inputs[n]))),
                    tuple(probe_grads[n][l] for l in range(len(probe_grads[n]))))
                for n in inputs}
        return ((loss, aux) if has_aux else loss), grads, taps
    return run
