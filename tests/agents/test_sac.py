"""SAC with DSP: the tanh-squashed Gaussian's log-probability and the greedy action against NumPy,
the critic target and the temperature's gradient against hand-computed values, the taps on the
batch's (s) and (s, a), the masking invariants after real training steps (actor, both critics,
their targets and Adam's moments), and a short run that learns Pendulum-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.agents.sac import (
    LOG_STD_RANGE,
    SACConfig,
    SACHParams,
    critic_targets,
    greedy_action,
    make_train,
    models,
    networks,
    policy_distribution,
    sac_losses,
    temperature_loss,
)
from dspjax.envs import ActionSpace
from dspjax.hparams import ConfigError
from dspjax.pruning import DSP, THRESHOLD_NAMES, chain_apply, chain_layers, pruner_param_mask
from dspjax.train.algos import get_algo
from dspjax.train.population import build_population, run_population, set_hparam

BOX = ActionSpace.box([-2.0, -1.0, 0.0], [2.0, 3.0, 1.0])


def numpy_log_std(raw):
    lo, hi = LOG_STD_RANGE
    return lo + 0.5 * (hi - lo) * (np.tanh(raw) + 1.0)


def test_squashed_gaussian_log_prob_matches_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(32, 3)).astype(np.float32)
    raw = rng.normal(size=(32, 3)).astype(np.float32)
    u = (mean + rng.normal(size=(32, 3))).clip(-2.5, 2.5).astype(np.float32)  # pre-tanh points
    log_std = numpy_log_std(raw.astype(np.float64))
    std = np.exp(log_std)
    gaussian = np.sum(-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi), -1)
    expected = gaussian - np.sum(np.log(1.0 - np.tanh(u.astype(np.float64)) ** 2), -1)
    pi = policy_distribution(jnp.asarray(np.concatenate([mean, raw], -1)))
    np.testing.assert_allclose(pi.log_prob(jnp.tanh(jnp.asarray(u))), expected, rtol=2e-4, atol=2e-3)


def test_samples_lie_in_the_unit_box_and_carry_their_own_log_prob():
    outputs = jnp.asarray(np.random.default_rng(1).normal(size=(256, 4)), jnp.float32)
    pi = policy_distribution(outputs)
    actions, log_prob = pi.sample_and_log_prob(seed=jax.random.PRNGKey(0))
    assert actions.shape == (256, 2) and np.all(np.abs(np.asarray(actions)) <= 1.0)
    inside = np.all(np.abs(np.asarray(actions)) < 0.99, -1)  # where atanh is well-conditioned
    np.testing.assert_allclose(np.asarray(pi.log_prob(actions))[inside], np.asarray(log_prob)[inside],
                               rtol=1e-3, atol=1e-3)


def test_greedy_action_is_the_rescaled_tanh_of_the_mean():
    outputs = np.array([[0.3, -4.0, 1.2, 9.0, -9.0, 0.0], [-1.0, 0.0, 20.0, 0.0, 0.0, 0.0]], np.float32)
    low, high = np.array(BOX.low), np.array(BOX.high)
    expected = low + 0.5 * (np.tanh(outputs[:, :3]) + 1.0) * (high - low)
    np.testing.assert_allclose(greedy_action(jnp.asarray(outputs), BOX), expected, rtol=1e-6)
    # the registered greedy policy of the actor's layers (evaluation, export, video) is the same
    layers = ({"kernel": jnp.eye(6)[:, :6], "bias": jnp.zeros(6)},)
    policy = get_algo("sac").greedy_policy("relu", BOX)
    np.testing.assert_allclose(policy(layers, jnp.asarray(outputs)), expected, rtol=1e-6)


def test_critic_target_matches_numpy_and_bootstraps_unless_terminated():
    reward = np.array([1.0, -0.5, 2.0, 0.0], np.float32)
    terminated = np.array([False, True, False, False])
    next_q1 = np.array([3.0, 1.0, -2.0, 0.5], np.float32)
    next_q2 = np.array([2.5, 4.0, -1.0, 0.7], np.float32)
    next_log_prob = np.array([-1.0, 0.3, 0.2, -2.0], np.float32)
    ours = critic_targets(reward, terminated, next_q1, next_q2, next_log_prob, 0.2, 0.9)
    # by hand: r + 0.9 (min(Q1', Q2') − 0.2 log π), 0 after a termination
    expected = [1.0 + 0.9 * (2.5 + 0.2), -0.5, 2.0 + 0.9 * (-2.0 - 0.04), 0.0 + 0.9 * (0.5 + 0.4)]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_temperature_loss_and_its_gradient_match_numpy():
    log_prob = jnp.array([-1.0, 0.5, -2.0, 0.1])
    target_entropy = -2.0
    log_alpha = jnp.log(0.5)
    value, grad = jax.value_and_grad(temperature_loss)(log_alpha, log_prob, target_entropy)
    mean = np.mean(np.asarray(log_prob) + target_entropy)  # −2.6: entropy above the target
    np.testing.assert_allclose(value, -np.log(0.5) * mean, rtol=1e-6)
    np.testing.assert_allclose(grad, -mean, rtol=1e-6)  # > 0: Adam lowers α
    assert float(jax.grad(temperature_loss, 1)(log_alpha, log_prob, target_entropy).sum()) == 0.0


def tiny_setup(dims=2, obs_size=3, batch=16):
    config = SACConfig(hidden_sizes=(8, 6), critic_hidden_sizes=(5,))
    space = ActionSpace.box([-1.0] * dims, [1.0] * dims)
    nets = models(config, space)
    rng = np.random.default_rng(0)
    batch = dict(obs=jnp.asarray(rng.normal(size=(batch, obs_size)), jnp.float32),
                 action=jnp.asarray(rng.uniform(-1, 1, size=(batch, dims)), jnp.float32),
                 reward=jnp.asarray(rng.normal(size=batch), jnp.float32),
                 next_obs=jnp.asarray(rng.normal(size=(batch, obs_size)), jnp.float32),
                 terminated=jnp.asarray(rng.random(batch) < 0.3))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    obs_action = jnp.concatenate([batch["obs"], batch["action"]], -1)
    params = {"actor": nets["actor"].init(keys[0], batch["obs"]),
              "q1": nets["q1"].init(keys[1], obs_action), "q2": nets["q2"].init(keys[2], obs_action),
              "log_alpha": jnp.log(jnp.float32(0.3))}
    actor_outputs = lambda p, obs: nets["actor"].apply(p["actor"], obs)  # noqa: E731
    q_value = lambda q, p, obs, a: nets[q].apply(p, jnp.concatenate([obs, a], -1))[..., 0]  # noqa: E731
    target = jax.tree.map(lambda x: 0.5 * x, {q: params[q] for q in ("q1", "q2")})

    def loss(p, key):
        return sac_losses(p, batch, target, key, SACHParams(target_entropy_scale=0.5), actor_outputs,
                          q_value, dims)
    return config, params, batch, loss


def test_temperature_gradient_is_its_own_loss_alone():
    """The full loss's gradient in log α is −mean(log π + target entropy) = entropy + 0.5 · dims:
    the actor loss's α is held fixed."""
    _, params, _, loss = tiny_setup()
    grads, aux = jax.grad(loss, has_aux=True)(params, jax.random.PRNGKey(1))
    np.testing.assert_allclose(grads["log_alpha"], aux["entropy"] + 0.5 * 2, rtol=1e-5)


def test_critic_gradient_is_the_critic_loss_alone_and_the_actor_gradient_the_actor_loss():
    _, params, _, loss = tiny_setup()
    key = jax.random.PRNGKey(2)
    grads = jax.grad(lambda p: loss(p, key)[0])(params)
    critic_grads = jax.grad(lambda p: loss(p, key)[1]["critic_loss"])(params)
    actor_grads = jax.grad(lambda p: loss(p, key)[1]["actor_loss"])(params)
    for q in ("q1", "q2"):
        for a, b in zip(jax.tree.leaves(grads[q]), jax.tree.leaves(critic_grads[q])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(actor_grads[q]))
    for a, b in zip(jax.tree.leaves(grads["actor"]), jax.tree.leaves(actor_grads["actor"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(critic_grads["actor"]))


def test_taps_are_the_actor_on_s_and_each_critic_on_s_and_a():
    """Taylor importance sees each network where the loss that trains it runs it."""
    config, params, batch, loss = tiny_setup()
    dsp = DSP(networks(config), None, SACHParams().dsp, 10)
    _, _, taps = dsp.value_and_grad(loss, has_aux=True)(params, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(taps["actor"][0], batch["obs"])
    for q in ("q1", "q2"):
        np.testing.assert_array_equal(taps[q][0], jnp.concatenate([batch["obs"], batch["action"]], -1))
        assert float(jnp.abs(taps[q][2][0]).sum()) > 0.0  # ∂L/∂h of the critic loss
    assert float(jnp.abs(taps["actor"][2][0]).sum()) > 0.0


def test_discrete_actions_are_refused():
    with pytest.raises(ConfigError, match="SAC needs box actions.*ppo or dqn"):
        SACConfig(env_id="CartPole-v1").validate()
    with pytest.raises(ConfigError, match="buffer_size=2"):
        SACConfig(num_envs=4, buffer_size=2).validate()


def test_training_keeps_pruned_groups_zero_in_actor_critics_targets_and_adam():
    config = SACConfig(num_envs=2, total_timesteps=2 * 300, buffer_size=600, batch_size=32,
                       learning_starts=100, hidden_sizes=(24, 16), eval_episodes=1)
    hp = SACHParams(tau=0.05)
    for name, value in (("prune_start", 0.1), ("prune_end", 0.5), ("prune_every", 1), ("c_final", 1.0),
                        ("threshold_rule", THRESHOLD_NAMES.index("adaptive"))):
        hp = set_hparam(hp, name, value)
    state, metrics, returns = jax.jit(make_train(config))(jax.random.PRNGKey(0), hp)
    assert np.isfinite(np.asarray(returns)).all() and not bool(metrics["diverged"][-1])
    assert float(metrics["critic_loss"][-1]) != 0.0  # learning happened
    adam = state.dsp.optimizer[0]
    chains = networks(config)
    for net in ("actor", "q1", "q2"):
        alive = np.asarray(metrics[f"{net}_alive_neurons"])
        assert alive[-1] < 40 and np.all(np.diff(alive) <= 0), (net, alive[-1])
        pmask = pruner_param_mask(chain_layers(state.params, chains[net]), state.dsp.pruners[net])
        trees = [state.params, adam.mu, adam.nu] + ([state.target_params] if net != "actor" else [])
        assert any(np.any(np.asarray(m) == 0) for m in jax.tree.leaves(pmask))
        for tree in trees:
            for leaf, m in zip(jax.tree.leaves(chain_layers(tree, chains[net])), jax.tree.leaves(pmask)):
                assert np.all(np.asarray(leaf)[np.asarray(m) == 0] == 0.0)
    # the pruned actor still acts: its greedy action is the masked network's
    layers = chain_layers(state.params, chains["actor"])
    obs = jnp.zeros((1, 3))
    assert np.isfinite(np.asarray(chain_apply(layers, obs, config.activation)[0])).all()


@pytest.mark.slow
def test_sac_learns_pendulum():
    """Dense SAC (the other defaults) on gymnax Pendulum-v1, 10k steps, one seed: a greedy return
    better than −400 (a random policy gets about −1200; 0 is the best). Measured on a 2-core AMD
    EPYC: `dspjax train --algo sac --steps 10000 --seeds 2 --sweep method=dense,dsp` gave −164 and
    −184 dense, −165 and −176 with DSP at its defaults (4 members in 270 s); 20k steps gave −164
    dense and with DSP (seed 0, 2 members in 400 s on a loaded machine)."""
    config = SACConfig(total_timesteps=10_000)
    members = build_population(SACHParams(), {"method": ["dense"]}, (0,))
    result = run_population(make_train, config, members, progress=False)
    assert float(np.mean(result.eval_returns)) > -400.0, result.eval_returns


def test_an_exported_sac_policy_acts_with_the_squashed_mean_in_numpy():
    """``policy_file.Policy.act`` (NumPy alone) gives the greedy action of SAC's actor outputs."""
    from dspjax.policy_file import SQUASHED_MEAN_AND_LOG_STD, Policy
    rng = np.random.default_rng(3)
    layers = [(rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32))]
    manifest = {"action_space": {"type": "box", "low": list(BOX.low), "high": list(BOX.high)},
                "outputs": get_algo("sac").box_outputs}
    assert manifest["outputs"] == SQUASHED_MEAN_AND_LOG_STD
    obs = rng.normal(size=(5, 4)).astype(np.float32)
    outputs = obs @ layers[0][0] + layers[0][1]
    np.testing.assert_allclose(Policy(layers, "relu", manifest).act(obs),
                               greedy_action(jnp.asarray(outputs), BOX), rtol=1e-5, atol=1e-6)
