"""DSP for any Flax network (``DSP``, ``taps``): groups, taps and importance read off a user's
module equal the MLP's on the same weights (NumPy reference), one optimiser step equals the §2–§4
steps done by hand in NumPy, two chains get independent masks, and a network sharing another's
mask stays exactly zero on pruned groups in parameters and Adam moments."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dspjax.pruning import (
    DSP,
    DenseChain,
    DSPHParams,
    chain_layers,
    dense_chain,
    group_norms,
    pruner_param_mask,
)
from dspjax.pruning.importance import TAYLOR
from dspjax.pruning.threshold import SCHEDULE


class ActorCritic(nn.Module):
    """A user's network as PureJaxRL writes it: two Dense chains in one module."""
    n_actions: int = 3

    @nn.compact
    def __call__(self, x):
        a = nn.tanh(nn.Dense(6)(x))
        a = nn.tanh(nn.Dense(5)(a))
        logits = nn.Dense(self.n_actions)(a)
        c = nn.tanh(nn.Dense(7)(x))
        value = nn.Dense(1)(c)
        return logits, value[..., 0]


ACTOR = dense_chain(("params",), 3)                                   # Dense_0, Dense_1, Dense_2
CRITIC = DenseChain((("params", "Dense_3"), ("params", "Dense_4")))


def setup(seed=0, batch=9):
    model = ActorCritic()
    x = jax.random.normal(jax.random.PRNGKey(seed + 100), (batch, 4))
    params = model.init(jax.random.PRNGKey(seed), x)
    # non-zero biases, so every quantity below depends on them
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.PRNGKey(seed + 1), p.shape), params)
    return model, params, x


def loss_of(model):
    def loss(params, x):
        logits, value = model.apply(params, x)
        return 0.5 * jnp.mean(jnp.sum(logits ** 2, -1)) + 0.5 * jnp.mean(value ** 2)
    return loss


def assert_sgd_step(new, params, grads, lr):
    """``new`` is the plain SGD step ``params − lr · grads``, leaf by leaf (float32: a product and a
    difference, a few ulp of the parameters)."""
    jax.tree.map(lambda n, p, g: np.testing.assert_allclose(n, p - lr * g, rtol=1e-6, atol=1e-7),
                 new, params, grads)


def np_backward(layers, x):
    """NumPy float64: hiddens and ∂L/∂h of L = 0.5 · mean_batch ||f(x)||² for a tanh chain."""
    layers = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in layers]
    h, hiddens, pre = np.asarray(x, np.float64), [], []
    for layer in layers[:-1]:
        z = h @ layer["kernel"] + layer["bias"]
        h = np.tanh(z)
        hiddens.append(h)
        pre.append(z)
    out = h @ layers[-1]["kernel"] + layers[-1]["bias"]
    g = out / out.shape[0]                                   # ∂L/∂out
    grads = [None] * len(hiddens)
    for l in reversed(range(len(hiddens))):
        g = g @ layers[l + 1]["kernel"].T                    # ∂L/∂h_l
        grads[l] = g
        g = g * (1.0 - hiddens[l] ** 2)                      # ∂L/∂z_l
    return hiddens, grads


def test_taps_are_the_hiddens_and_loss_gradients_of_each_chain_in_numpy():
    model, params, x = setup()
    dsp = DSP({"actor": ACTOR, "critic": CRITIC}, optax.sgd(0.1), DSPHParams(), 10)
    loss, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    np.testing.assert_allclose(loss, loss_of(model)(params, x), rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 grads, jax.grad(loss_of(model))(params, x))
    for name, chain in (("actor", ACTOR), ("critic", CRITIC)):
        inputs, hiddens, hidden_grads = taps[name]
        np.testing.assert_array_equal(inputs, x)
        ref_h, ref_g = np_backward(chain_layers(params, chain), x)
        assert len(hiddens) == len(ref_h) == len(chain.layers) - 1
        for got, want in zip(hiddens, ref_h):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        for got, want in zip(hidden_grads, ref_g):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_a_call_on_other_parameters_is_not_tapped():
    """A target network (other arrays) or the same network on a second batch is left alone: the
    taps are those of the first call on the parameters being differentiated."""
    model, params, x = setup()
    target = jax.tree.map(lambda p: 2.0 * p, params)
    x2 = x[::-1] * 3.0

    def loss(p, x):
        logits_t, _ = model.apply(target, x2)                # target first: not tapped
        return loss_of(model)(p, x) + jnp.sum(jax.lax.stop_gradient(
            model.apply(p, x2)[0]) * logits_t)               # second call on p: not tapped

    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), DSPHParams(), 10)
    _, _, taps = dsp.value_and_grad(loss)(params, x)
    ref_h, ref_g = np_backward(chain_layers(params, ACTOR), x)
    for got, want in zip(taps["actor"][1] + taps["actor"][2], ref_h + ref_g):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_loss_that_never_runs_a_declared_chain_is_refused():
    model, params, x = setup()
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), DSPHParams(), 10)
    with pytest.raises(ValueError, match="never runs dense layer"):
        dsp.value_and_grad(lambda p, x: jnp.sum(p["params"]["Dense_0"]["kernel"]))(params, x)


def test_groups_of_a_flax_module_are_the_mlp_groups_in_numpy():
    _, params, _ = setup()
    layers = [{k: np.asarray(v, np.float64) for k, v in layer.items()}
              for layer in chain_layers(params, ACTOR)]
    for l, norms in enumerate(group_norms(chain_layers(params, ACTOR))):
        ref = np.sqrt((layers[l]["kernel"] ** 2).sum(0) + layers[l]["bias"] ** 2
                      + (layers[l + 1]["kernel"] ** 2).sum(1))
        np.testing.assert_allclose(norms, ref, rtol=1e-5)


def np_penalty_grad(layers, alphas, lam):
    """∂R/∂θ of R = λ Σ_l Σ_j α_j sqrt(|g|) ||g||, in NumPy; overlapping groups add up."""
    layers = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in layers]
    out = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in layers]
    for l, a in enumerate(alphas):
        w, b, w_next = layers[l]["kernel"], layers[l]["bias"], layers[l + 1]["kernel"]
        size = w.shape[0] + 1 + w_next.shape[1]
        for j in range(len(a)):
            norm = np.sqrt((w[:, j] ** 2).sum() + b[j] ** 2 + (w_next[j] ** 2).sum())
            if norm == 0:
                continue
            c = lam * a[j] * np.sqrt(size) / norm
            out[l]["kernel"][:, j] += c * w[:, j]
            out[l]["bias"][j] += c * b[j]
            out[l + 1]["kernel"][j] += c * w_next[j]
    return out


def np_alive(layers, masks):
    alive = [np.ones(layers[0]["kernel"].shape[0], bool), *map(np.asarray, masks),
             np.ones(layers[-1]["bias"].shape[0], bool)]
    return [{"kernel": np.outer(alive[l], alive[l + 1]), "bias": alive[l + 1]} for l in range(len(layers))]


def test_one_step_is_the_method_done_by_hand_in_numpy():
    """SGD step of ``DSP.step`` = mask(θ − η · mask(∇L + ∇R)) with the importance EMA updated
    from the taps (Taylor, §2), α from the importance before it (§3), pruned groups exactly 0."""
    model, params, x = setup()
    hp = DSPHParams(lam=0.05, beta=0.5, reg_warmup=0.0, delta=0.1)
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), hp, num_iterations=10)
    state = dsp.init(jax.random.PRNGKey(0), params)
    pruner = state.pruners["actor"]
    masks = (jnp.array([1, 1, 0, 1, 0, 1], bool), jnp.array([1, 0, 1, 1, 1], bool))
    importance = (jnp.linspace(0.1, 1.0, 6), jnp.linspace(1.0, 0.2, 5))
    state = state.replace(pruners={"actor": pruner.replace(neuron_masks=masks, importance=importance)})
    layers = chain_layers(params, ACTOR)
    params = dsp.masked(params, state)          # as training leaves them: pruned groups at 0
    layers = chain_layers(params, ACTOR)

    loss, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    new_params, new_state, info = dsp.step(state, params, grads, taps, update=3)

    # §2: EMA of E|h · ∂L/∂h|
    ref_h, ref_g = np_backward(layers, x)
    for got, old, h, g in zip(new_state.pruners["actor"].importance, importance, ref_h, ref_g):
        np.testing.assert_allclose(got, 0.5 * np.asarray(old) + 0.5 * np.abs(h * g).mean(0), rtol=1e-4)
    # §3: α = 1 − s + δ on alive neurons, s = I / max_alive I, from the importance before the step
    alphas = []
    for imp, m in zip(importance, masks):
        imp, m = np.asarray(imp, np.float64), np.asarray(m)
        s = np.where(m, imp, 0) / (np.where(m, imp, 0).max() + 1e-8)
        alphas.append(np.where(m, 1.0 - s + 0.1, 0.0))
    alive = np_alive(layers, masks)
    rl_grads = chain_layers(jax.grad(loss_of(model))(params, x), ACTOR)
    pen = np_penalty_grad(layers, alphas, 0.05)
    for l, layer in enumerate(chain_layers(new_params, ACTOR)):
        for k in ("kernel", "bias"):
            g = (np.asarray(rl_grads[l][k], np.float64) + pen[l][k]) * alive[l][k]
            want = (np.asarray(layers[l][k], np.float64) - 0.1 * g) * alive[l][k]
            np.testing.assert_allclose(layer[k], want, rtol=1e-4, atol=1e-6)
            assert np.all(np.asarray(layer[k])[~alive[l][k]] == 0.0)
    # the critic is not declared: a plain SGD step on the RL loss
    full = jax.grad(loss_of(model))(params, x)
    np.testing.assert_allclose(new_params["params"]["Dense_3"]["kernel"],
                               params["params"]["Dense_3"]["kernel"] - 0.1 * full["params"]["Dense_3"]["kernel"],
                               rtol=1e-5, atol=1e-7)
    assert float(info["penalty"]) > 0
    # the diagnostics: global norms of the declared network's RL and penalty gradients (before masking).
    # The RL norm sums squares of the same float32 gradients (~60 terms: error ~60 ulp ≈ 4e-6); the
    # penalty's float32 gradient itself differs from the float64 formula as in the step check above.
    def np_norm(tree):
        return np.sqrt(sum(np.sum(np.asarray(layer[k], np.float64) ** 2) for layer in tree for k in ("kernel", "bias")))
    np.testing.assert_allclose(info["actor_rl_grad_norm"], np_norm(rl_grads), rtol=1e-5)
    np.testing.assert_allclose(info["actor_penalty_grad_norm"], np_norm(pen), rtol=1e-4)
    assert set(dsp.no_step_info()) == set(info) and all(float(v) == 0 for v in dsp.no_step_info().values())
    # not a pruning step (prune_every 5 from 10 % of training): masks unchanged
    for a, b in zip(new_state.pruners["actor"].neuron_masks, masks):
        np.testing.assert_array_equal(a, b)


def test_pruning_happens_on_the_last_update_of_a_pruning_iteration_only():
    model, params, x = setup()
    hp = DSPHParams(threshold_rule=SCHEDULE, k_final=0.2, prune_start=0.1, prune_end=0.5,
                    prune_every=1, importance=TAYLOR, min_alive=1)
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.01), hp, num_iterations=10, updates_per_iteration=4)
    assert dsp.update_index(2, 3) == 11 and dsp.iteration(11) == 2
    state = dsp.init(jax.random.PRNGKey(0), params)
    alive = []
    for update in range(4 * 10):
        _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
        params, state, _ = dsp.step(state, params, grads, taps, update)
        alive.append(int(sum(m.sum() for m in state.pruners["actor"].neuron_masks)))
    changes = [u for u in range(1, 40) if alive[u] != alive[u - 1]]
    assert changes and all(u % 4 == 3 for u in changes)            # last update of an iteration
    assert all(1 <= u // 4 <= 5 for u in changes)   # inside the window: iterations 1–5 of 10
    assert alive[-1] == 2 + 1   # ceil(0.2 · 6) + ceil(0.2 · 5), the schedule's final size


def test_lambda_is_per_iteration_each_of_its_steps_applies_lambda_over_the_steps():
    """With U optimiser steps per iteration, a step's penalty is R(θ) at λ/U (§3): its value and
    its gradient in the step are those of a one-step-per-iteration DSP at λ/U (NumPy: the penalty
    gradient of the by-hand check above)."""
    model, params, x = setup()
    hp = DSPHParams(lam=0.2, beta=0.5, reg_warmup=0.0, reg_end=1.0)
    per_step = DSP({"actor": ACTOR}, optax.sgd(0.1), hp.replace(lam=0.05), num_iterations=10)
    per_iteration = DSP({"actor": ACTOR}, optax.sgd(0.1), hp, num_iterations=10, updates_per_iteration=4)
    state = per_step.init(jax.random.PRNGKey(0), params)
    _, grads, taps = per_step.value_and_grad(loss_of(model))(params, x)
    want_params, _, want_info = per_step.step(state, params, grads, taps, update=3)
    got_params, _, got_info = per_iteration.step(state, params, grads, taps, update=4 * 3 + 2)
    # 0.2 / 4 is exact in float32 (a power-of-two scaling) and equals float32(0.05), so both steps
    # do the same float32 arithmetic: the 1e-6 only allows for a compiler reordering a sum.
    np.testing.assert_allclose(got_info["penalty"], want_info["penalty"], rtol=1e-6)
    np.testing.assert_allclose(got_info["actor_penalty_grad_norm"], want_info["actor_penalty_grad_norm"], rtol=1e-6)
    for got, want in zip(jax.tree.leaves(got_params), jax.tree.leaves(want_params)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    # and it is the NumPy penalty gradient at λ/U: λ·α·sqrt(|g|)·θ_g/||θ_g||, α from ones (s = 1)
    layers = chain_layers(params, ACTOR)
    alphas = [np.full(layer["kernel"].shape[1], 0.1) for layer in layers[:-1]]
    pen = np_penalty_grad(layers, alphas, 0.05)
    norm = np.sqrt(sum(np.sum(g[k] ** 2) for g in pen for k in ("kernel", "bias")))
    np.testing.assert_allclose(got_info["actor_penalty_grad_norm"], norm, rtol=1e-4)


def test_two_chains_get_independent_masks():
    model, params, x = setup()
    prune_actor = DSPHParams(threshold_rule=SCHEDULE, k_final=0.3, prune_start=0.0, prune_end=0.5,
                             prune_every=1, min_alive=1)
    dsp = DSP({"actor": ACTOR, "critic": CRITIC}, optax.sgd(0.01),
              {"actor": prune_actor, "critic": prune_actor.replace(k_final=0.6)}, num_iterations=4)
    state = dsp.init(jax.random.PRNGKey(0), params)
    for update in range(4):
        _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
        params, state, _ = dsp.step(state, params, grads, taps, update)
    assert [int(m.sum()) for m in state.pruners["actor"].neuron_masks] == [2, 2]   # ceil(0.3 · 6), ceil(0.3 · 5)
    assert [int(m.sum()) for m in state.pruners["critic"].neuron_masks] == [5]     # ceil(0.6 · 7)
    metrics = dsp.metrics(params, state)
    assert int(metrics["actor_alive_neurons"]) == 4 and int(metrics["critic_alive_neurons"]) == 5


class TwoMLPs(nn.Module):
    @nn.compact
    def __call__(self, x):
        online = nn.Dense(1)(nn.relu(nn.Dense(8, name="online_0")(x)))
        target = nn.Dense(1)(nn.relu(nn.Dense(8, name="target_0")(x)))
        return online[..., 0], target[..., 0]


def test_a_network_sharing_a_mask_stays_exactly_zero_in_parameters_and_adam_moments():
    """A target network in the optimised tree, declared with ``mask_of``: even with gradients of
    its own, its pruned groups and their Adam moments are exactly 0 after every step."""
    model = TwoMLPs()
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
    params = model.init(jax.random.PRNGKey(1), x)
    online = DenseChain((("params", "online_0"), ("params", "Dense_0")), activation="relu")
    target = DenseChain((("params", "target_0"), ("params", "Dense_1")), activation="relu",
                        mask_of="online")
    hp = DSPHParams(threshold_rule=SCHEDULE, k_final=0.25, prune_start=0.0, prune_end=0.5,
                    prune_every=1, lam=1e-3, min_alive=1)
    dsp = DSP({"online": online, "target": target}, optax.adam(1e-2), hp, num_iterations=6)
    state = dsp.init(jax.random.PRNGKey(2), params)
    assert list(state.pruners) == ["online"]

    def loss(p, x):
        a, b = model.apply(p, x)
        return jnp.mean((a - 1.0) ** 2) + jnp.mean((b + 1.0) ** 2)   # the target learns too

    for update in range(6):
        _, grads, taps = dsp.value_and_grad(loss)(params, x)
        params, state, _ = dsp.step(state, params, grads, taps, update)
    masks = state.pruners["online"].neuron_masks
    assert int(masks[0].sum()) == 2
    adam = state.optimizer[0]
    for chain in (online, target):
        pmask = pruner_param_mask(chain_layers(params, chain), state.pruners["online"])
        for tree in (params, adam.mu, adam.nu):
            for layer, m in zip(chain_layers(tree, chain), pmask):
                for k in ("kernel", "bias"):
                    assert np.all(np.asarray(layer[k])[np.asarray(m[k]) == 0] == 0.0)
                    assert np.any(np.asarray(layer[k])[np.asarray(m[k]) == 1] != 0.0)
    # ``masked`` does the same to a tree kept outside the optimiser
    outside = dsp.masked(jax.tree.map(jnp.ones_like, params), state)
    assert float(outside["params"]["target_0"]["kernel"].sum()) == 3 * 2


def test_mask_of_must_name_a_network_with_its_own_mask():
    with pytest.raises(ValueError, match="mask_of='nope'"):
        DSP({"a": ACTOR, "b": DenseChain(ACTOR.layers, mask_of="nope")}, optax.sgd(0.1), DSPHParams(), 1)


def test_step_vmaps_over_a_population_of_hyperparameters():
    model, params, x = setup()
    hps = jax.tree.map(lambda *v: jnp.stack([jnp.asarray(a) for a in v]),
                       DSPHParams(lam=0.0), DSPHParams(lam=0.1))

    def one(hp):
        dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), hp, num_iterations=10)
        state = dsp.init(jax.random.PRNGKey(0), params)
        _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
        return dsp.step(state, params, grads, taps, 2)[2]["penalty"]

    penalties = jax.jit(jax.vmap(one))(hps)
    assert float(penalties[0]) == 0.0 and float(penalties[1]) > 0.0


def test_a_declaration_that_does_not_fit_the_parameters_is_refused_naming_the_network():
    model, params, x = setup()
    wrong_order = DenseChain((("params", "Dense_1"), ("params", "Dense_0"), ("params", "Dense_2")))
    with pytest.raises(ValueError, match="network 'actor': layer .*Dense_0.* takes 4 inputs but .*Dense_1.* gives 5"):
        DSP({"actor": wrong_order}, optax.sgd(0.1), DSPHParams(), 10).init(jax.random.PRNGKey(0), params)
    missing = DenseChain((("params", "Dense_0"), ("params", "Dense_9")))
    with pytest.raises(ValueError, match="network 'actor': a layer path"):
        DSP({"actor": missing}, optax.sgd(0.1), DSPHParams(), 10).init(jax.random.PRNGKey(0), params)
    other_shape = DenseChain(CRITIC.layers, mask_of="actor")
    with pytest.raises(ValueError, match="network 'target': mask_of='actor' has other layer shapes"):
        DSP({"actor": ACTOR, "target": other_shape}, optax.sgd(0.1), DSPHParams(), 10).init(
            jax.random.PRNGKey(0), params)


def test_with_nothing_declared_a_step_is_the_optimizer_step():
    model, params, x = setup()
    dsp = DSP({}, optax.sgd(0.1), DSPHParams(), 10)
    state = dsp.init(jax.random.PRNGKey(0), params)
    loss, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    new, _, info = dsp.step(state, params, grads, taps, 0)
    assert taps == {} and float(info["penalty"]) == 0.0
    assert_sgd_step(new, params, jax.grad(loss_of(model))(params, x), 0.1)


def test_a_network_that_prunes_nothing_at_lambda_zero_takes_the_plain_optimizer_step():
    """The dense baseline (``pruning`` none, λ 0) skips §2–§3 (``DSP._scored``): its step is the
    optimizer's on the RL gradient, its importance and masks stay as they were, and it reports no
    penalty; the RL gradient's norm is still reported (NumPy)."""
    model, params, x = setup()
    dense = DSPHParams(lam=0.0, pruning=0)
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), dense, num_iterations=10)
    state = dsp.init(jax.random.PRNGKey(0), params)
    _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    new, new_state, info = dsp.step(state, params, grads, taps, update=3)
    full = jax.grad(loss_of(model))(params, x)
    assert_sgd_step(new, params, full, 0.1)
    for got, before in zip(jax.tree.leaves(new_state.pruners), jax.tree.leaves(state.pruners)):
        np.testing.assert_array_equal(got, before)
    assert float(info["penalty"]) == 0.0 and float(info["actor_penalty_grad_norm"]) == 0.0
    rl = np.sqrt(sum(np.sum(np.asarray(layer[k], np.float64) ** 2)
                     for layer in chain_layers(full, ACTOR) for k in ("kernel", "bias")))
    np.testing.assert_allclose(info["actor_rl_grad_norm"], rl, rtol=1e-5)   # 83 float32 squares summed: ≤ 83 ulp ≈ 5e-6


@pytest.mark.parametrize("update,reg_end,scored", [
    (4, 0.5, True),    # progress 0.4: the last pruning iteration of the window 0.1–0.4
    (5, 0.6, True),    # window closed, penalty still on: α reads the importance
    (5, 0.5, False),   # window closed, penalty off: nothing reads the importance again
    (9, 1.0, True),    # reg_end 1: the penalty is never off
])
def test_a_network_is_scored_while_its_window_is_open_or_its_penalty_on(update, reg_end, scored):
    """``needs_scores``: past the pruning window with the penalty off, a step is the optimizer's
    on the RL gradient alone and the importance stays (NumPy); before, it moves."""
    model, params, x = setup()
    hp = DSPHParams(lam=0.5, reg_warmup=0.0, prune_start=0.1, prune_end=0.4, reg_end=reg_end)
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), hp, num_iterations=10)
    state = dsp.init(jax.random.PRNGKey(0), params)
    _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    new, new_state, info = dsp.step(state, params, grads, taps, update=update)
    moved = [not np.array_equal(a, b) for a, b in zip(new_state.pruners["actor"].importance,
                                                       state.pruners["actor"].importance)]
    assert all(moved) if scored else not any(moved)
    assert (float(info["penalty"]) > 0.0) == (update / 10 < reg_end or reg_end >= 1.0)
    if not scored:
        assert_sgd_step(new, params, jax.grad(loss_of(model))(params, x), 0.1)


def test_a_population_mixing_dense_and_dsp_members_steps_each_as_alone():
    """Under ``vmap`` with ``pruning`` batched, the skip of §2–§3 becomes a select: every member's
    step, importance and masks are those it takes alone (a dense member beside a DSP member)."""
    model, params, x = setup()
    members = [DSPHParams(lam=0.0, pruning=0), DSPHParams(lam=0.1, reg_warmup=0.0, prune_every=1,
                                                          prune_start=0.0, threshold_rule=SCHEDULE,
                                                          k_final=0.5, min_alive=1)]

    def steps(hp):
        dsp = DSP({"actor": ACTOR}, optax.adam(1e-2), hp, num_iterations=4)
        p, state = params, dsp.init(jax.random.PRNGKey(0), params)
        for update in range(4):
            _, grads, taps = dsp.value_and_grad(loss_of(model))(p, x)
            p, state, _ = dsp.step(state, p, grads, taps, update)
        return p, state.pruners

    together = jax.jit(jax.vmap(steps))(jax.tree.map(lambda *v: jnp.stack([jnp.asarray(a) for a in v]), *members))
    for i, hp in enumerate(members):
        alone = jax.jit(steps)(hp)
        for got, want in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
            np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-7)   # float32, 4 Adam steps
    first_layer = np.asarray(together[1]["actor"].neuron_masks[0])
    assert first_layer[0].sum() == 6 and first_layer[1].sum() < 6   # the dense member pruned nothing


def test_a_proximal_step_is_the_group_soft_threshold_of_the_optimizer_step_then_masked():
    """Proximal form (§3): ``DSP.step`` = mask(proximal_step(θ − η · mask(∇L))), the shrink
    factors from the importance the step just observed; pruned groups exactly 0. ``proximal_step``
    is checked against NumPy in test_dsp / test_regularizer."""
    from dspjax.pruning import proximal_step
    from dspjax.pruning.regularizer import PROXIMAL
    model, params, x = setup()
    hp = DSPHParams(lam=0.5, beta=0.5, reg_warmup=0.0, delta=0.1, penalty_form=PROXIMAL)
    dsp = DSP({"actor": ACTOR}, optax.sgd(0.1), hp, num_iterations=10, step_size=lambda _: 0.1)
    state = dsp.init(jax.random.PRNGKey(0), params)
    masks = (jnp.array([1, 1, 0, 1, 0, 1], bool), jnp.array([1, 0, 1, 1, 1], bool))
    state = state.replace(pruners={"actor": state.pruners["actor"].replace(neuron_masks=masks)})
    params = dsp.masked(params, state)
    _, grads, taps = dsp.value_and_grad(loss_of(model))(params, x)
    new, new_state, info = dsp.step(state, params, grads, taps, update=3)

    assert float(info["penalty"]) == 0.0   # no loss term in proximal form
    pruner = new_state.pruners["actor"]    # the importance after this step's EMA (masks unchanged)
    sgd = jax.tree.map(lambda p, g: p - 0.1 * g, params, dsp.masked(jax.grad(loss_of(model))(params, x), state))
    want = proximal_step(chain_layers(sgd, ACTOR), pruner, hp, 0.3, 0.1)   # progress 3 / 10
    alive = np_alive(chain_layers(params, ACTOR), masks)
    shrunk = False
    for l, (got, w, plain) in enumerate(zip(chain_layers(new, ACTOR), want, chain_layers(sgd, ACTOR))):
        for k in ("kernel", "bias"):
            # the same products in another order (the factors multiplied into the mask): a few
            # float32 roundings, ≤ 4 ulp ≈ 5e-7 relative
            np.testing.assert_allclose(got[k], np.asarray(w[k]) * alive[l][k], rtol=1e-6, atol=0)
            assert np.all(np.asarray(got[k])[~alive[l][k]] == 0.0)
            shrunk |= bool(np.any(np.abs(np.asarray(got[k])) < np.abs(np.asarray(plain[k])) * alive[l][k]))
    assert shrunk   # λ 0.5 shrinks the alive groups
