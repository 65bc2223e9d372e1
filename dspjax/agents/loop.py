"""The outer loop every agent shares: ``train(key, hparams)`` as one ``lax.scan`` over
iterations, a greedy evaluation at the end, the per-iteration episode figures, and what happens
to a member that diverges.

The same iterations also run in *segments* (``train.segment(length)``): a program that runs
iterations ``first .. first + length - 1`` of the loop from a given state, so a driver can stop
between segments (checkpoints, Ctrl-C) and still compute exactly what the one long scan computes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dspjax.envs import config_vec_env, evaluate_policy
from dspjax.pruning import chain_apply


def episode_metrics(info) -> dict:
    """Episodes that ended this iteration and their mean return (0 when none ended)."""
    episodes = jnp.sum(info["episode_done"])
    return dict(episodes=episodes,
                episode_return=jnp.sum(info["episode_return"]) / jnp.maximum(episodes, 1))


def all_finite(loss, params):
    """False when the loss or any parameter is NaN or infinite (the member has diverged)."""
    return jnp.isfinite(loss) & jax.tree.reduce(lambda a, x: a & jnp.all(jnp.isfinite(x)),
                                                params, jnp.array(True))


def keep_unless_diverged(diverged, old_state, new_state):
    """``old_state`` where the member has diverged (it keeps its last finite networks)."""
    return jax.tree.map(lambda old, new: jnp.where(diverged, old, new), old_state, new_state)


def make_greedy_evaluate(config, policy_outputs, action_space, greedy=None):
    """``evaluate(state, key)``: returns of the greedy action of ``policy_outputs(state.params,
    obs)`` over ``config.eval_episodes`` episodes of ``config.env_id``. ``greedy(outputs) ->
    actions`` is ``action_space.greedy`` unless given (the argmax of action scores, or a box's mean
    action clipped; SAC's squashed mean is its own)."""
    greedy = action_space.greedy if greedy is None else greedy

    def evaluate(state, key):
        return evaluate_policy(lambda n: config_vec_env(config, n),
                               lambda obs, _: greedy(policy_outputs(state.params, obs)),
                               key, config.eval_episodes)
    return evaluate


def greedy_policy(activation: str, action_space):
    """``policy(layers, obs) -> actions`` of a (masked or compact) policy network whose outputs are
    action scores or a box's mean action (PPO's actor, DQN's Q-network): ``action_space.greedy``
    of its outputs, the argmax or the mean clipped to the bounds."""
    return lambda layers, obs: action_space.greedy(chain_apply(layers, obs, activation)[0])


def make_env_restart(env):
    """``restart(state, key)``: the agent state with its environments reset (new ``obs`` and
    ``env_state``), for resuming from a checkpoint; ``None`` for environments whose state lives in
    the JAX state (gymnax), which a checkpoint restores exactly. Host-bridged environments keep
    their state in worker processes, which a checkpoint cannot hold."""
    if not getattr(env, "state_on_host", False):
        return None

    def restart(state, key):
        obs, env_state = env.reset(key)
        return state.replace(obs=obs, env_state=env_state)
    return restart


def split_train_key(key):
    """``(init key, evaluation key)`` of a member's key: the one split both ways of running use."""
    k_init, k_eval = jax.random.split(key)
    return k_init, k_eval


def make_scan_train(init, iteration_step, evaluate, num_iterations: int, restart_env=None):
    """``train(key, hp) -> (final state, per-iteration metrics, evaluation returns)``, with its
    parts as attributes: ``init``, ``evaluate``, ``num_iterations``, ``restart_env`` (see
    ``make_env_restart``) and ``segment(length)``.

    ``segment(length)`` returns ``run(state, hp, first) -> (state, metrics)`` that runs iterations
    ``first, ..., first + length - 1``; those at or past ``num_iterations`` are skipped (state
    unchanged, metrics zero), so one compiled segment also serves a shorter last one. ``first`` is
    the same for every member, so under ``vmap`` the skip stays a real branch: nothing runs."""
    def train(key, hp):
        k_init, k_eval = split_train_key(key)
        state = init(k_init, hp)
        state, metrics = jax.lax.scan(lambda s, i: iteration_step(s, i, hp), state,
                                      jnp.arange(num_iterations))
        return state, metrics, evaluate(state, k_eval)

    def segment(length: int):
        def run(state, hp, first):
            shapes = jax.eval_shape(lambda s: iteration_step(s, jnp.asarray(first), hp)[1], state)

            def step(s, i):
                return jax.lax.cond(
                    i < num_iterations, lambda s: iteration_step(s, i, hp),
                    lambda s: (s, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)), s)
            return jax.lax.scan(step, state, first + jnp.arange(length))
        return run

    train.init, train.evaluate, train.segment = init, evaluate, segment
    train.num_iterations, train.restart_env = num_iterations, restart_env
    return train
