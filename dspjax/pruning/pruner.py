"""DSP as one piece of a training step, for any declared networks (METHOD.md §1–§5).

An agent declares its networks once — ``{name: DenseChain}`` in its parameter tree — and hands
``DSP`` its optax optimizer. Per optimiser step it then makes one call::

    dsp = DSP(networks, optimizer, hparams, num_iterations, updates_per_iteration)
    state = dsp.init(key, params)                                  # masks, importance, optimizer
    loss, grads, taps = dsp.value_and_grad(rl_loss)(params, batch)  # RL loss only
    params, state, info = dsp.step(state, params, grads, taps, update)

``step`` does everything of §2–§4 in the one order that is right:

1. the regularizer's gradient ``∇R(θ)`` is added to the RL gradient (§3, loss form);
2. the importance EMA takes this batch's scores (§2; Taylor from ``taps``);
3. gradients of pruned parameters are zeroed; the optimizer steps;
4. the proximal group soft-threshold (§3, proximal form);
5. on the last step of a pruning iteration, the threshold rule updates the masks (§4) and the
   optimizer's moments of every pruned parameter are set to exactly 0 (step 3 keeps them there);
6. every pruned parameter is set to exactly 0 (§4).

Steps 1–2 are skipped (one ``lax.cond``) for a network with nothing to score: one that prunes
nothing at λ 0 (the dense baseline, PPO's critic with ``prune_critic`` off), and every network once
its pruning window has closed and its penalty is off.

``update`` is the index of the optimiser step in training, ``iteration · updates_per_iteration +
k`` for the ``k``-th step of an iteration: the clock of ``λ_t`` and of the pruning window. It is an
argument, not a counter in the state, so that under ``vmap`` it stays one number for the whole
population: a per-member counter would be batched, and ``lax.cond`` on it would become a select
that runs the pruning step on every update of every member.

A network declared with ``mask_of`` uses another's masks; a network not declared is neither
regularized nor pruned. ``masked(tree, state)`` applies the masks to a tree shaped like the
parameters (a target network kept outside the optimizer). ``hparams`` is one ``DSPHParams`` for
every network or a dict of them by name (their pruning windows must agree).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dspjax.pruning import taps as _taps
from dspjax.pruning.chain import DenseChain, chain_layers, output_jacobians, with_chain_layers
from dspjax.pruning.compact import compression_stats
from dspjax.pruning.dsp import (
    PROXIMAL,
    DSPHParams,
    PrunerState,
    init_pruner,
    is_pruning_iteration,
    needs_scores,
    observe_importance,
    proximal_step_factors,
    prune_step,
    regularizer_loss,
)
from dspjax.pruning.groups import param_masks
from dspjax.pruning.importance import batch_importance
from dspjax.pruning.mask import apply_param_mask, mask_optimizer_state


def _samples_first(x):
    """Every sample on one leading axis, ``(samples, features)``: a batch may come as
    (steps, envs, features) or (batch, features); an array or a tuple of them."""
    if isinstance(x, tuple):
        return tuple(_samples_first(h) for h in x)
    return x.reshape(-1, x.shape[-1])


GRADIENTS = ("rl", "penalty")  # the gradients whose norms ``DSP.step`` reports


def _grad_norm_name(network: str, kind: str) -> str:
    """``info``'s name of the global norm of ``network``'s ``kind`` gradient (``GRADIENTS``)."""
    return f"{network}_{kind}_grad_norm"


def _idle(operand):
    """The branch of a network with nothing to score or regularize (``DSP._scored``): the RL
    gradient alone, the importance as it was."""
    rl_grads, pruner = operand
    zero = jnp.zeros((), jnp.float32)
    return rl_grads, pruner, zero, zero


@struct.dataclass
class DSPState:
    """The optimizer's state and every pruned network's ``PrunerState`` by name."""
    optimizer: optax.OptState
    pruners: dict


@dataclasses.dataclass(frozen=True)
class DSP:
    """DSP for the ``networks`` of one parameter tree, around an optax ``optimizer``.

    ``num_iterations`` is the length of training in the agent's iterations (the unit of
    ``prune_start``, ``prune_end`` and ``prune_every``); ``updates_per_iteration`` the optimiser
    steps each iteration takes (pruning happens after the last); ``step_size(optimizer_state)`` the
    learning rate of the step just taken (for the proximal form; ``None``: the form is not used).
    """
    networks: dict[str, DenseChain]
    optimizer: optax.GradientTransformation
    hparams: DSPHParams | dict
    num_iterations: int
    updates_per_iteration: int = 1
    step_size: Callable | None = None

    def __post_init__(self):
        for name, chain in self.networks.items():
            owner = self.networks.get(chain.mask_of) if chain.mask_of is not None else chain
            if owner is None or owner.mask_of is not None:
                raise ValueError(f"network {name!r}: mask_of={chain.mask_of!r} must name a declared "
                                 "network with its own mask")

    # -- what is declared -------------------------------------------------------------------
    @property
    def pruned(self) -> tuple[str, ...]:
        """The networks with their own masks (scored, regularized and pruned)."""
        return tuple(n for n, c in self.networks.items() if c.mask_of is None)

    def hp(self, name: str) -> DSPHParams:
        """The DSP hyperparameters of network ``name``."""
        return self.hparams[name] if isinstance(self.hparams, dict) else self.hparams

    def layers(self, params, name: str) -> tuple:
        """Network ``name``'s layers ``({"kernel", "bias"}, ...)`` in ``params``."""
        return chain_layers(params, self.networks[name])

    def _pruner(self, state: DSPState, name: str) -> PrunerState:
        chain = self.networks[name]
        return state.pruners[chain.mask_of or name]

    # -- the training step ------------------------------------------------------------------
    def check(self, params) -> None:
        """ValueError naming the network and layer when a declared chain is not one in ``params``:
        a path that leads nowhere, or a layer whose inputs are not the previous layer's outputs."""
        for name, chain in self.networks.items():
            try:
                layers = chain_layers(params, chain)
            except (KeyError, TypeError, IndexError):
                raise ValueError(f"network {name!r}: a layer path of {chain.layers} is not in the "
                                 "parameters (paths lead to Dense layers' {'kernel', 'bias'})") from None
            for l in range(1, len(layers)):
                n_out, n_in = jnp.shape(layers[l - 1]["kernel"])[-1], jnp.shape(layers[l]["kernel"])[-2]
                if n_out != n_in:
                    raise ValueError(f"network {name!r}: layer {chain.layers[l]} takes {n_in} inputs "
                                     f"but {chain.layers[l - 1]} gives {n_out} outputs; declare the "
                                     "Dense layers in the order the network applies them")
            owner = self.networks.get(chain.mask_of)
            if owner is not None and [jnp.shape(x["kernel"]) for x in layers] != \
                    [jnp.shape(x["kernel"]) for x in chain_layers(params, owner)]:
                raise ValueError(f"network {name!r}: mask_of={chain.mask_of!r} has other layer shapes")

    def init(self, key, params) -> DSPState:
        """All-ones masks, importance EMAs started (§2), the optimizer's state; the declaration
        checked against ``params`` first (``check``)."""
        self.check(params)
        keys = jax.random.split(key, len(self.pruned))
        pruners = {n: init_pruner(k, self.layers(params, n), self.hp(n))
                   for k, n in zip(keys, self.pruned)}
        return DSPState(self.optimizer.init(params), pruners)

    def value_and_grad(self, loss_fn, has_aux: bool = False):
        """``(value, grads, taps)`` of ``loss_fn(params, *args)``: see ``taps.value_and_grad``."""
        return _taps.value_and_grad(loss_fn, self.networks, has_aux)

    def iteration(self, update):
        """The training iteration optimiser step ``update`` belongs to."""
        return update // self.updates_per_iteration

    def update_index(self, iteration, step):
        """The ``update`` of the ``step``-th optimiser step (from 0) of ``iteration``, for
        ``step``: ``iteration · updates_per_iteration + step`` (e.g. PPO's ``step = epoch ·
        minibatches + minibatch``). Build ``iteration`` and ``step`` from scan counters
        (``jnp.arange`` as a scan's ``xs``), not from the state (see the module docstring)."""
        return iteration * self.updates_per_iteration + step

    def step_hp(self, name: str) -> DSPHParams:
        """Network ``name``'s hyperparameters as one optimiser step applies them: ``λ`` divided
        by ``updates_per_iteration`` (``λ`` is per iteration, see the module docstring)."""
        hp = self.hp(name)
        return hp.replace(lam=hp.lam / self.updates_per_iteration)

    def _scored(self, name: str, progress):
        """Whether network ``name`` has anything to score or regularize at ``progress``
        (``needs_scores``: it prunes and the window is open, or its penalty is on). A network
        that has not (the dense baseline, PPO's critic with ``prune_critic`` off, every network
        once its window and penalty are over: 60 % of a default PPO run) skips §2–§3 in a
        ``lax.cond``; its importance stays as it was. Under ``vmap`` this is one branch wherever a
        population agrees on ``pruning``, ``λ``, ``prune_end`` and ``reg_end`` (those leaves are
        then not batched), else a select that computes both."""
        return needs_scores(self.hp(name), progress)

    def _regularize(self, name: str, layers, taps, progress):
        """§2–§3 for network ``name`` as a ``lax.cond`` branch: ``(rl_grads, pruner) ->
        (rl_grads + ∇R, pruner with the batch's importance, R, ||∇R||)``."""
        hp = self.hp(name)
        inputs, hiddens, hidden_grads = (_samples_first(x) for x in taps)

        def regularize(operand):
            rl_grads, pruner = operand
            penalty, penalty_grads = jax.value_and_grad(regularizer_loss)(
                layers, pruner, self.step_hp(name), progress)
            scores = batch_importance(
                hp.importance, layers, hiddens, hidden_grads,
                lambda: output_jacobians(layers, inputs, self.networks[name].activation),
                pruner.importance)
            return (jax.tree.map(jnp.add, rl_grads, penalty_grads), observe_importance(pruner, hp, scores),
                    penalty, optax.tree.norm(penalty_grads))
        return regularize

    def step(self, state: DSPState, params, grads, taps, update):
        """Optimiser step ``update`` with DSP (steps 1–6 of the module docstring); ``taps`` from
        ``value_and_grad``. Returns ``(params, state, info)``, ``info`` holding the penalty
        ``R(θ)`` before the step and, per pruned network ``n``, the global norms of its RL
        gradient and of the penalty's (``n_rl_grad_norm``, ``n_penalty_grad_norm``)."""
        iteration = self.iteration(update)
        progress = iteration / self.num_iterations
        penalty, grad_norms, pruners = jnp.zeros((), jnp.float32), {}, dict(state.pruners)
        for n in self.pruned:
            layers, rl_grads = self.layers(params, n), self.layers(grads, n)
            # How hard the penalty pulls next to the task: ||∇L_RL|| and ||∇R|| (§3).
            grad_norms[_grad_norm_name(n, "rl")] = optax.tree.norm(rl_grads)
            rl_grads, pruners[n], penalty_n, grad_norms[_grad_norm_name(n, "penalty")] = jax.lax.cond(
                self._scored(n, progress), self._regularize(n, layers, taps[n], progress), _idle,
                (rl_grads, pruners[n]))
            grads = with_chain_layers(grads, self.networks[n], rl_grads)
            penalty = penalty + penalty_n

        grads = apply_param_mask(grads, self.param_mask(params, state))
        updates, opt_state = self.optimizer.update(grads, state.optimizer, params)
        params = optax.apply_updates(params, updates)
        if not self.pruned:  # nothing declared: the optimizer step alone
            return params, state.replace(optimizer=opt_state), {"penalty": penalty}
        ones = {n: tuple(jnp.ones_like(i) for i in pruners[n].importance) for n in self.pruned}
        proximal = functools.reduce(jnp.logical_or, [self.hp(n).penalty_form == PROXIMAL for n in self.pruned]) \
            if self.step_size is not None else False  # no step size: the proximal form is not used

        def proximal_factors(pruners, opt_state):
            """The proximal step's factors (§3), per neuron: the parameters are scaled by them
            together with their masking below."""
            eta = self.step_size(opt_state)
            return {n: proximal_step_factors(self.layers(params, n), pruners[n], self.step_hp(n),
                                             progress, eta) for n in self.pruned}

        # The pruning step zeroes the optimizer's moments of what it removes (§4, step 5); on the
        # other steps they need no masking: a pruned parameter's gradient is masked to 0 (step 3),
        # and an optimizer's moments of a parameter whose gradient stays 0 stay 0 (SGD, momentum,
        # Adam, AdamW, RMSProp). The parameters are masked on every step whatever the optimizer.
        def prune(operand):
            pruners, opt_state = operand
            pruners = {n: prune_step(self.layers(params, n), pruners[n], self.hp(n), progress)
                       for n in self.pruned}
            return pruners, mask_optimizer_state(opt_state, self.param_mask(params, DSPState(opt_state, pruners)))

        def prune_if_in_window(operand):
            window = self.hp(self.pruned[0])
            return jax.lax.cond(is_pruning_iteration(iteration, self.num_iterations, window),
                                prune, lambda operand: operand, operand)

        # Steps 4–5 in one cond that most steps skip (a cond costs a few per cent of a step on a
        # CPU): taken on an iteration's last step, and on every step where a network is in
        # proximal form. Inside, the proximal factors in a cond of their own, and two nested conds
        # for pruning: the outer one reads only ``update`` (one number for a whole population), so
        # it stays a branch under vmap; the inner one reads the window hyperparameters, which a
        # sweep batches (vmap turns it into a select), so it runs only on an iteration's last step.
        last_update = (update + 1) % self.updates_per_iteration == 0

        def after_update(operand):
            pruners, opt_state = operand
            shrink = ones if self.step_size is None else jax.lax.cond(
                proximal, proximal_factors, lambda *_: ones, pruners, opt_state)
            pruners, opt_state = jax.lax.cond(last_update, prune_if_in_window, lambda operand: operand,
                                              (pruners, opt_state))
            return pruners, opt_state, shrink

        pruners, opt_state, shrink = jax.lax.cond(
            last_update | proximal, after_update, lambda operand: (*operand, ones), (pruners, opt_state))
        state = DSPState(opt_state, pruners)
        return (apply_param_mask(params, self.param_mask(params, state, shrink)), state,
                {"penalty": penalty, **grad_norms})

    def no_step_info(self) -> dict:
        """``step``'s ``info`` with every entry 0, for an iteration that takes no optimiser step
        (e.g. DQN before ``learning_starts``)."""
        zero = jnp.zeros((), jnp.float32)
        return {"penalty": zero, **{_grad_norm_name(n, kind): zero for n in self.pruned for kind in GRADIENTS}}

    # -- masks and figures --------------------------------------------------------------------
    def param_mask(self, params, state: DSPState, neuron_factors=None):
        """Float 0/1 tree shaped like ``params``: 0 on every pruned parameter of every declared
        network (``mask_of`` ones included), 1 elsewhere; with ``neuron_factors`` (per-neuron
        arrays by network, e.g. the proximal step's), each network's entries also multiplied by
        the factors of the neurons they connect."""
        mask = jax.tree.map(lambda x: jnp.ones(jnp.shape(x), jnp.float32), params)
        for n, chain in self.networks.items():
            pruner = self._pruner(state, n)
            neurons = pruner.neuron_masks
            if neuron_factors and n in neuron_factors:
                neurons = tuple(m.astype(jnp.float32) * f for m, f in zip(neurons, neuron_factors[n]))
            mask = with_chain_layers(mask, chain, param_masks(self.layers(params, n), neurons,
                                                              pruner.weight_masks))
        return mask

    def masked(self, tree, state: DSPState):
        """``tree`` (shaped like the parameters, e.g. a target network) with every pruned
        parameter set to exactly 0."""
        return apply_param_mask(tree, self.param_mask(tree, state))

    def metrics(self, params, state: DSPState) -> dict:
        """§5 figures and alive neurons per layer of every pruned network, ``<net>_<figure>``."""
        out = {}
        for n in self.pruned:
            p = state.pruners[n]
            stats = compression_stats(self.layers(params, n), p.neuron_masks, p.weight_masks)
            out.update({f"{n}_{k}": v for k, v in stats.items()})
            for l, m in enumerate(p.neuron_masks):
                out[f"{n}_alive_layer{l}"] = jnp.sum(m)
                out[f"{n}_floored_layer{l}"] = p.floored[l]
        return out
