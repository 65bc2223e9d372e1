"""One network's DSP put together (METHOD.md §1–§4, §7): pruner state, loss, masking, pruning
steps, vmapping over a population of hyperparameters, and validation."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dspjax.hparams import ConfigError
from dspjax.pruning.chain import chain_apply
from dspjax.pruning.compact import compact
from dspjax.pruning.dsp import (
    METHOD_PRESETS,
    NO_PRUNING,
    STRUCTURED,
    UNSTRUCTURED,
    DSPHParams,
    PrunerState,
    init_pruner,
    is_pruning_iteration,
    mask_gradients,
    observe_importance,
    proximal_step,
    prune_step,
    pruner_param_mask,
    regularizer_loss,
)
from dspjax.pruning.importance import IMPORTANCE_NAMES, NONE, RANDOM, TAYLOR
from dspjax.pruning.mask import apply_param_mask, mask_optimizer_state
from dspjax.pruning.regularizer import LOSS, PROXIMAL
from dspjax.pruning.threshold import ADAPTIVE, NORM, SCHEDULE, THRESHOLD_NAMES

SIZES = (4, 12, 8, 3)
EPS = 1e-8


def stack(members):
    """A population: every leaf of the DSPHParams stacked along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *members)


def pruner(rng, params, alive_fraction=0.7):
    """A PrunerState with random importance and some neurons already pruned."""
    hidden = [layer["bias"].shape[0] for layer in params[:-1]]
    masks = []
    for n in hidden:
        m = rng.random(n) < alive_fraction
        m[:2] = True
        masks.append(jnp.asarray(m))
    return PrunerState(neuron_masks=tuple(masks),
                       weight_masks=tuple(jnp.ones(layer["kernel"].shape, bool) for layer in params),
                       importance=tuple(jnp.asarray(rng.random(n).astype(np.float32)) for n in hidden),
                       floored=tuple(jnp.array(False) for _ in hidden))


def apply_masks(params, opt_state, pruners):
    """Exact masking of a dict of networks and their optimizer state (what ``DSP.step`` ends with)."""
    pmask = {n: pruner_param_mask(params[n], pruners[n]) for n in params}
    return apply_param_mask(params, pmask), mask_optimizer_state(opt_state, pmask)


def np_alphas(state, delta, importance_kind):
    out = []
    for imp, m in zip(state.importance, state.neuron_masks):
        imp, m = np.asarray(imp, np.float64), np.asarray(m)
        s = np.where(m, imp, 0.0) / (np.max(np.where(m, imp, 0.0)) + EPS)
        out.append(np.where(m, 1.0 if importance_kind == NONE else 1.0 - s + delta, 0.0))
    return out


def np_penalty(params, alphas):
    total = 0.0
    for l, a in enumerate(alphas):
        w, b, w_next = (np.asarray(params[l]["kernel"], np.float64), np.asarray(params[l]["bias"], np.float64),
                        np.asarray(params[l + 1]["kernel"], np.float64))
        for j in range(len(a)):
            g = np.concatenate([w[:, j], [b[j]], w_next[j, :]])
            total += a[j] * np.sqrt(g.size) * np.linalg.norm(g)
    return total


def test_init_pruner_shapes(make_mlp):
    params = make_mlp(np.random.default_rng(0), SIZES)
    state = init_pruner(jax.random.PRNGKey(0), params, DSPHParams())
    chex.assert_shape(list(state.neuron_masks), [(12,), (8,)])
    chex.assert_shape(list(state.weight_masks), [(4, 12), (12, 8), (8, 3)])
    chex.assert_shape(list(state.importance), [(12,), (8,)])
    for m in state.neuron_masks + state.weight_masks:
        assert m.dtype == bool and bool(jnp.all(m))
    for imp in state.importance:
        np.testing.assert_array_equal(imp, 1.0)
    rand = init_pruner(jax.random.PRNGKey(0), params, DSPHParams(importance=RANDOM))
    assert len(np.unique(np.asarray(rand.importance[0]))) == 12


@pytest.mark.parametrize("importance", [TAYLOR, NONE])
@pytest.mark.parametrize("progress", [0.0, 0.05, 0.5])
def test_regularizer_loss_matches_numpy(importance, progress, make_mlp):
    rng = np.random.default_rng(1)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    hp = DSPHParams(lam=0.3, delta=0.2, reg_warmup=0.1, reg_end=1.0, importance=importance)
    lam_t = 0.3 * min(progress / 0.1, 1.0)
    expected = lam_t * np_penalty(params, np_alphas(state, 0.2, importance))
    np.testing.assert_allclose(regularizer_loss(params, state, hp, progress), expected, rtol=1e-5, atol=1e-8)
    # the proximal form adds no loss term, and none is added from reg_end on
    assert float(regularizer_loss(params, state, hp.replace(penalty_form=PROXIMAL), 0.5)) == 0.0
    assert float(regularizer_loss(params, state, hp.replace(reg_end=0.4), 0.5)) == 0.0


def test_regularizer_loss_gradient_is_finite_with_pruned_zero_groups(make_mlp):
    rng = np.random.default_rng(2)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params, alive_fraction=0.4)
    params = apply_masks({"actor": params}, optax.sgd(0.1).init({"actor": params}), {"actor": state})[0]["actor"]
    grad = jax.grad(regularizer_loss)(params, state, DSPHParams(lam=1.0, reg_end=1.0), 0.5)
    for leaf in jax.tree.leaves(grad):
        assert np.all(np.isfinite(leaf))
    assert any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(grad))


def test_proximal_step(make_mlp):
    rng = np.random.default_rng(3)
    params = make_mlp(rng, (3, 6, 2))  # one hidden layer: the groups do not overlap
    state = pruner(rng, params)
    hp = DSPHParams(lam=0.5, delta=0.1, reg_warmup=0.0, reg_end=1.0, penalty_form=PROXIMAL)
    eta = 0.2
    out = proximal_step(params, state, hp, 0.5, eta)
    (alpha,) = np_alphas(state, 0.1, TAYLOR)
    w, b, w_next = (np.asarray(params[0]["kernel"], np.float64), np.asarray(params[0]["bias"], np.float64),
                    np.asarray(params[1]["kernel"], np.float64))
    for j in range(6):
        g = np.concatenate([w[:, j], [b[j]], w_next[j, :]])
        factor = max(0.0, 1.0 - eta * 0.5 * alpha[j] * np.sqrt(g.size) / np.linalg.norm(g))
        np.testing.assert_allclose(out[0]["kernel"][:, j], factor * w[:, j], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(out[0]["bias"][j], factor * b[j], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(out[1]["kernel"][j, :], factor * w_next[j, :], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out[1]["bias"], params[1]["bias"])
    # the loss form leaves the parameters alone after the optimiser step
    chex.assert_trees_all_close(proximal_step(params, state, hp.replace(penalty_form=LOSS), 0.5, eta), params,
                                rtol=0, atol=0)


def test_observe_importance_ema(make_mlp):
    rng = np.random.default_rng(4)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    batch = tuple(jnp.asarray(rng.random(n).astype(np.float32)) for n in SIZES[1:-1])
    new = observe_importance(state, DSPHParams(beta=0.25), batch)
    for old, b, got in zip(state.importance, batch, new.importance):
        np.testing.assert_allclose(got, 0.75 * np.asarray(old) + 0.25 * np.asarray(b), rtol=1e-6)
    chex.assert_trees_all_equal(new.neuron_masks, state.neuron_masks)
    fixed = observe_importance(state, DSPHParams(importance=RANDOM), batch)
    chex.assert_trees_all_equal(fixed.importance, state.importance)


def alive_entries(params, state):
    """NumPy reference of the params-shaped alive mask (kernel entry alive iff both neurons are)."""
    alive = [np.ones(params[0]["kernel"].shape[0], bool), *map(np.asarray, state.neuron_masks),
             np.ones(params[-1]["bias"].shape[0], bool)]
    return tuple({"kernel": np.outer(alive[l], alive[l + 1]) & np.asarray(state.weight_masks[l]),
                  "bias": alive[l + 1]} for l in range(len(params)))


def test_mask_gradients(make_mlp):
    rng = np.random.default_rng(5)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    state = state.replace(weight_masks=tuple(jnp.asarray(rng.random(w.shape) < 0.8) for w in state.weight_masks))
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape).astype(np.float32)), params)
    masked = mask_gradients(grads, params, state)
    chex.assert_trees_all_close(masked, jax.tree.map(lambda g, a: np.where(a, g, 0.0), grads,
                                                     alive_entries(params, state)), rtol=0, atol=0)
    chex.assert_trees_all_close(pruner_param_mask(params, state),
                                jax.tree.map(lambda a: a.astype(np.float32), alive_entries(params, state)))


def test_apply_masks_zeroes_params_and_adam_moments(make_mlp):
    rng = np.random.default_rng(6)
    params = {"actor": make_mlp(rng, SIZES)}
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape).astype(np.float32)), params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    state = pruner(rng, params["actor"], alive_fraction=0.5)
    new_params, new_opt_state = apply_masks(params, opt_state, {"actor": state})

    alive = {"actor": alive_entries(params["actor"], state)}
    assert not all(bool(np.all(a)) for a in jax.tree.leaves(alive))  # something is pruned
    chex.assert_trees_all_close(new_params, jax.tree.map(lambda p, a: np.where(a, p, 0.0), params, alive),
                                rtol=0, atol=0)
    adam, new_adam = opt_state[0], new_opt_state[0]
    for moment, new_moment in [(adam.mu, new_adam.mu), (adam.nu, new_adam.nu)]:
        assert all(bool(np.all(np.asarray(m) != 0)) for m in jax.tree.leaves(moment))
        chex.assert_trees_all_close(new_moment, jax.tree.map(lambda m, a: np.where(a, m, 0.0), moment, alive),
                                    rtol=0, atol=0)
    assert int(new_adam.count) == int(adam.count) == 1
    chex.assert_trees_all_equal_structs(new_opt_state, opt_state)


def test_masked_training_stays_exactly_compact(make_mlp):
    """mask_gradients → Adam → apply_masks keeps pruned groups at exactly 0, so the masked network
    computes what its compact version computes (§4, §6)."""
    rng = np.random.default_rng(7)
    params = {"actor": make_mlp(rng, SIZES)}
    state = pruner(rng, params["actor"], alive_fraction=0.5)
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    params, opt_state = apply_masks(params, opt_state, {"actor": state})
    x = jnp.asarray(rng.normal(size=(32, SIZES[0])).astype(np.float32))

    def loss(p):
        return (jnp.mean(chain_apply(p["actor"], x)[0] ** 2)
                + regularizer_loss(p["actor"], state, DSPHParams(lam=0.01, reg_end=1.0), 0.5))

    for _ in range(3):
        grads = jax.grad(loss)(params)
        grads = {"actor": mask_gradients(grads["actor"], params["actor"], state)}
        updates, opt_state = opt.update(grads, opt_state, params)
        params, opt_state = apply_masks(optax.apply_updates(params, updates), opt_state, {"actor": state})
    dead = jax.tree.map(lambda a: ~a, alive_entries(params["actor"], state))
    for p, d in zip(jax.tree.leaves(params["actor"]), jax.tree.leaves(dead)):
        np.testing.assert_array_equal(np.asarray(p)[d], 0.0)
    small = compact(params["actor"], state.neuron_masks)
    np.testing.assert_allclose(chain_apply(small, x)[0], chain_apply(params["actor"], x)[0], rtol=0, atol=1e-6)


def test_is_pruning_iteration_window_and_period():
    hp = DSPHParams(prune_start=0.1, prune_end=0.6, prune_every=5)
    n = 100
    expected = [i % 5 == 0 and 0.1 <= i / n <= 0.6 for i in range(n + 1)]
    got = [bool(is_pruning_iteration(i, n, hp)) for i in range(n + 1)]
    assert got == expected
    assert sum(got) == 11  # 10, 15, ..., 60
    jitted = jax.jit(is_pruning_iteration, static_argnums=1)
    assert [bool(jitted(jnp.int32(i), n, hp)) for i in (5, 10, 12, 60, 65)] == [False, True, False, True, False]


def test_is_pruning_iteration_is_one_number_for_dense_beside_pruned_members():
    """A population of dense and pruned members batches ``pruning``; the trainer's ``lax.cond`` on
    this predicate stays a branch (not a select running prune_step every iteration) only if the
    predicate is not batched with it. ``out_axes=None`` refuses a batched result."""
    members = DSPHParams(pruning=jnp.array([NO_PRUNING, STRUCTURED]))
    only_pruning_batched = jax.tree.map(lambda _: None, DSPHParams()).replace(pruning=0)
    shared = jax.vmap(lambda hp: is_pruning_iteration(jnp.int32(10), 100, hp),
                      in_axes=(only_pruning_batched,), out_axes=None)(members)
    assert bool(shared)


@pytest.mark.parametrize("n", [20, 100, 300, 1000, 1953])
def test_is_pruning_iteration_under_jit_includes_both_window_ends(n):
    """The trainer calls it under jit with a traced iteration and a static count; window ends on
    the iteration grid must count as inside, as they do in exact arithmetic."""
    windows = [(0.1, 0.6), (0.2, 0.8), (0.3, 0.7), (0.0, 1.0)]
    members = [DSPHParams(prune_start=s, prune_end=e, prune_every=1) for s, e in windows]
    iterations = jnp.arange(n + 1)
    got = jax.jit(jax.vmap(jax.vmap(is_pruning_iteration, in_axes=(0, None, None)), in_axes=(None, None, 0)),
                  static_argnums=1)(iterations, n, stack(members))
    for row, (start, end) in zip(np.asarray(got), windows):
        # exact rational comparison i / n >= start  <=>  i >= start * n (start * n integer or not)
        expected = [round(start * n * 1e6) <= i * 1e6 <= round(end * n * 1e6) for i in range(n + 1)]
        np.testing.assert_array_equal(row, expected)


def np_adaptive_prune(state, c_final, p, min_alive):
    """NumPy reference of one structured adaptive-threshold pruning step."""
    ramp = 1 - (1 - p) ** 3
    out = []
    for imp, m in zip(state.importance, state.neuron_masks):
        imp, m = np.asarray(imp, np.float64), np.asarray(m)
        s = np.where(m, imp, 0.0) / (np.max(np.where(m, imp, 0.0)) + EPS)
        tau = c_final * ramp * s[m].mean()
        top = np.argsort(-np.where(m, s, -np.inf))[:min_alive]
        keep = m & (s >= tau)
        keep[top] = keep[top] | m[top]
        out.append(keep)
    return out


@pytest.mark.parametrize("progress", [0.1, 0.3, 0.6, 0.9])
def test_prune_step_adaptive_matches_numpy(progress, make_mlp):
    rng = np.random.default_rng(8)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    hp = DSPHParams(threshold_rule=ADAPTIVE, c_final=1.0, prune_start=0.1, prune_end=0.6, min_alive=3)
    new = prune_step(params, state, hp, progress)
    p = min(max((progress - 0.1) / 0.5, 0.0), 1.0)
    for got, ref, old in zip(new.neuron_masks, np_adaptive_prune(state, 1.0, p, 3), state.neuron_masks):
        np.testing.assert_array_equal(got, ref)
        assert not np.any(np.asarray(got) & ~np.asarray(old))
    if progress >= 0.3:
        assert sum(int(m.sum()) for m in new.neuron_masks) < sum(int(m.sum()) for m in state.neuron_masks)
    chex.assert_trees_all_equal(new.weight_masks, state.weight_masks)
    chex.assert_trees_all_equal(new.importance, state.importance)


def test_prune_step_schedule_reaches_k_final(make_mlp):
    rng = np.random.default_rng(9)
    params = make_mlp(rng, (4, 40, 20, 2))
    state = init_pruner(jax.random.PRNGKey(0), params, DSPHParams())
    state = state.replace(importance=tuple(jnp.asarray(rng.permutation(n).astype(np.float32))
                                           for n in (40, 20)))
    hp = DSPHParams(threshold_rule=SCHEDULE, k_final=0.25, min_alive=1)
    step = jax.jit(prune_step)
    for t in np.linspace(hp.prune_start, hp.prune_end, 11):
        state = step(params, state, hp, jnp.float32(t))
    assert [int(m.sum()) for m in state.neuron_masks] == [math.ceil(0.25 * 40), math.ceil(0.25 * 20)]
    for m, imp in zip(state.neuron_masks, state.importance):  # the most important ones survive
        np.testing.assert_array_equal(np.asarray(m), np.asarray(imp) >= len(imp) - int(m.sum()))


def test_prune_step_pruning_none_leaves_masks_unchanged(make_mlp):
    rng = np.random.default_rng(10)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    for rule in range(len(THRESHOLD_NAMES)):
        hp = DSPHParams(pruning=NO_PRUNING, threshold_rule=rule, c_final=1.0, k_final=0.1, tau_final=10.0,
                        c_relative=0.99)
        assert any(bool(jnp.any(a != b)) for a, b in zip(  # the same step with pruning on does prune
            prune_step(params, state, hp.replace(pruning=STRUCTURED), 0.6).neuron_masks, state.neuron_masks))
        new = prune_step(params, state, hp, 0.6)
        chex.assert_trees_all_equal(new.neuron_masks, state.neuron_masks)
        chex.assert_trees_all_equal(new.weight_masks, state.weight_masks)


def test_prune_step_unstructured_changes_only_weight_masks(make_mlp):
    rng = np.random.default_rng(11)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    hp = DSPHParams(pruning=UNSTRUCTURED, gmp_sparsity=0.9, c_final=1.0)
    new = prune_step(params, state, hp, 0.6)  # p = 1: final sparsity
    chex.assert_trees_all_equal(new.neuron_masks, state.neuron_masks)
    for m, old, layer in zip(new.weight_masks, state.weight_masks, params):
        m = np.asarray(m)
        assert m.sum() == math.ceil(0.1 * m.size - 1e-6)
        assert not np.any(m & ~np.asarray(old))
        w = np.abs(np.asarray(layer["kernel"]))
        assert w[m].min() >= w[~m].max()  # the largest |w| stay
    # structured pruning leaves the weight masks alone
    chex.assert_trees_all_equal(prune_step(params, state, hp.replace(pruning=STRUCTURED), 0.6).weight_masks,
                                state.weight_masks)


def population():
    return [
        DSPHParams(lam=0.0, c_final=0.5, threshold_rule=ADAPTIVE, importance=TAYLOR),
        DSPHParams(lam=1e-3, c_final=1.0, threshold_rule=ADAPTIVE, importance=NONE, delta=0.5),
        DSPHParams(lam=2e-2, threshold_rule=SCHEDULE, k_final=0.3, importance=RANDOM, min_alive=2),
        DSPHParams(lam=0.1, threshold_rule=NORM, tau_final=0.3, penalty_form=PROXIMAL, reg_warmup=0.5),
        DSPHParams(lam=0.5, pruning=UNSTRUCTURED, gmp_sparsity=0.5, prune_start=0.0, prune_end=0.4),
        DSPHParams(lam=0.2, pruning=NO_PRUNING, importance=IMPORTANCE_NAMES.index("output")),
    ]


def test_prune_step_vmaps_over_a_population_of_hparams(make_mlp):
    rng = np.random.default_rng(12)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params, alive_fraction=0.9)
    members = population()
    for hp in members:
        hp.validate()
    batched = jax.jit(jax.vmap(prune_step, in_axes=(None, None, 0, None)))(params, state, stack(members), 0.35)
    singles = [prune_step(params, state, hp, 0.35) for hp in members]
    for i, single in enumerate(singles):
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], batched), single)
    # the members really differ, so the comparison above has teeth
    alive = {tuple(int(m.sum()) for m in s.neuron_masks + s.weight_masks) for s in singles}
    assert len(alive) >= 4


@pytest.mark.parametrize("progress", [0.02, 0.3])
def test_regularizer_loss_vmaps_over_a_population_of_hparams(progress, make_mlp):
    rng = np.random.default_rng(13)
    params = make_mlp(rng, SIZES)
    state = pruner(rng, params)
    members = population()
    batched = jax.jit(jax.vmap(regularizer_loss, in_axes=(None, None, 0, None)))(params, state, stack(members),
                                                                                 progress)
    singles = np.array([float(regularizer_loss(params, state, hp, progress)) for hp in members])
    np.testing.assert_allclose(batched, singles, rtol=1e-6, atol=0)
    assert len(np.unique(singles)) >= 4
    assert singles[3] == 0.0  # proximal form


def test_init_pruner_and_proximal_step_vmap_over_hparams(make_mlp):
    rng = np.random.default_rng(14)
    params = make_mlp(rng, SIZES)
    members = population()
    key = jax.random.PRNGKey(3)
    batched = jax.jit(jax.vmap(init_pruner, in_axes=(None, None, 0)))(key, params, stack(members))
    for i, hp in enumerate(members):
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], batched), init_pruner(key, params, hp))
    state = pruner(rng, params)
    batched = jax.jit(jax.vmap(proximal_step, in_axes=(None, None, 0, None, None)))(params, state, stack(members),
                                                                                   0.5, 0.1)
    for i, hp in enumerate(members):
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), proximal_step(params, state, hp, 0.5, 0.1),
                                    rtol=1e-6, atol=1e-7)


def test_default_hparams_and_presets_validate():
    DSPHParams().validate()
    for name, overrides in METHOD_PRESETS.items():
        DSPHParams(**overrides).validate()


@pytest.mark.parametrize("field,value", [
    ("c_final", 2.0), ("c_final", -0.1), ("lam", -1.0), ("delta", 0.0), ("beta", 1.5), ("beta", 0.0),
    ("k_final", 0.0), ("gmp_sparsity", 1.0), ("reg_warmup", 1.1), ("reg_end", 0.0), ("prune_every", 0),
    ("importance", len(IMPORTANCE_NAMES)), ("threshold_rule", len(THRESHOLD_NAMES)), ("pruning", -1),
    ("penalty_form", 2), ("lam", float("nan")), ("tau_final", float("inf")), ("min_alive", 0),
    ("c_relative", 1.5), ("c_relative", -0.1),
])
def test_validate_rejects_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        DSPHParams(**{field: value}).validate()


def test_validate_rejects_an_empty_pruning_window():
    with pytest.raises(ConfigError, match="prune_start"):
        DSPHParams(prune_start=0.6, prune_end=0.6).validate()
    with pytest.raises(ConfigError, match="prune_start"):
        DSPHParams(prune_start=0.7, prune_end=0.5).validate()
