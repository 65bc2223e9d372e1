"""``export_policy``: a member's compact policy network written as .npz (+ JSON manifest) or ONNX,
read back with NumPy alone (``dspjax.policy_file``), equal to the masked network it came from; and
every bad input refused with a ConfigError that names it, nothing overwritten.

The run directories here are written by hand (config, summary, an orbax checkpoint of random
masked networks), so no agent is compiled; tests/test_cli.py exports real trained runs."""

import dataclasses
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pytest

from dspjax.agents import PPOConfig
from dspjax.agents.dqn import DQNConfig
from dspjax.hparams import ConfigError
from dspjax.networks import init_layers
from dspjax.policy_file import forward, load_policy, manifest_path
from dspjax.pruning import chain_apply, dense_chain, param_masks
from dspjax.train import export as export_module
from dspjax.train.export import export_policy
from dspjax.train.run_dir import save_checkpoint

HIDDEN = (16, 8)
# Alive hidden neurons of each member (actor); member 2 is unpruned, member 3 diverged.
ALIVE = [(5, 3), (2, 2), (16, 8), (1, 1)]
RETURNS = [120.0, 180.0, 150.0, 500.0]


def _masked_network(key, sizes, alive, weight_density=1.0):
    """Random MLP params, hidden masks keeping ``alive[l]`` random neurons, weight masks keeping
    ``weight_density`` of each kernel; params zeroed where masked, as training leaves them."""
    params = init_layers(key, sizes)
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    params = tuple({"kernel": np.asarray(p["kernel"]), "bias": rng.normal(size=p["bias"].shape).astype(np.float32)}
                   for p in params)
    neuron = [np.isin(np.arange(n), rng.choice(n, a, replace=False)) for n, a in zip(sizes[1:-1], alive)]
    weight = [rng.random(p["kernel"].shape) < weight_density for p in params]
    masks = param_masks(params, neuron, weight)
    params = tuple({k: p[k] * np.asarray(m[k]) for k in p} for p, m in zip(params, masks))
    return params, neuron, weight


def _write_fake_run(run_dir, algo, config, nets, alive, returns, weight_density=1.0, diverged=()):
    """A run directory as ``write_run`` leaves it, for networks ``nets`` (name -> output size)."""
    run_dir.mkdir(parents=True)
    sizes_in = 4
    members = []
    params = {net: [] for net in nets}
    neuron = {net: [] for net in nets}
    weight = {net: [] for net in nets}
    for i, a in enumerate(alive):
        for j, (net, n_out) in enumerate(nets.items()):
            p, nm, wm = _masked_network(jax.random.PRNGKey(10 * i + j), (sizes_in, *HIDDEN, n_out), a,
                                        weight_density)
            params[net].append(p)
            neuron[net].append(nm)
            weight[net].append(wm)
        members.append({"member": i, "seed": i % 2, "grid_point": {"method": "dsp"},
                        "hparams": {"lam": 2e-4, "c_final": 0.9}})
    stack = lambda trees: jax.tree.map(lambda *xs: np.stack(xs), *trees)
    state = types.SimpleNamespace(  # a population's final state as the agents leave it
        params={net: {"params": {f"Dense_{l}": layer for l, layer in enumerate(stack(params[net]))}}
                for net in nets},
        dsp=types.SimpleNamespace(pruners={
            net: types.SimpleNamespace(neuron_masks=stack(neuron[net]), weight_masks=stack(weight[net]))
            for net in nets}))
    declared = {net: dense_chain((net, "params"), len(HIDDEN) + 1) for net in nets}
    cfg = {"algo": algo, "networks": list(nets), "config": dataclasses.asdict(config),
           "members": members}
    (run_dir / "config.json").write_text(json.dumps(cfg))
    summary = {"algo": algo, "env_id": config.env_id, "networks": list(nets), "policy_network": next(iter(nets)),
               "members": [{**m, "final_return": r, "diverged": i in diverged}
                           for i, (m, r) in enumerate(zip(members, returns))]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    save_checkpoint(run_dir / "checkpoint", state.params, state.dsp.pruners, declared)
    return {net: (params[net], neuron[net]) for net in nets}


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("export") / "ppo"
    nets = _write_fake_run(run_dir, "ppo", PPOConfig(hidden_sizes=HIDDEN), {"actor": 2, "critic": 1},
                           ALIVE, RETURNS, diverged=(3,))
    return run_dir, nets["actor"]


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory):
    """DQN (relu), with unstructured weight masks on top of the neuron masks."""
    run_dir = tmp_path_factory.mktemp("export") / "dqn"
    nets = _write_fake_run(run_dir, "dqn", DQNConfig(hidden_sizes=HIDDEN), {"q": 3}, [(6, 4), (9, 2)],
                           [10.0, 20.0], weight_density=0.7)
    return run_dir, nets["q"]


def numpy_mlp(params, obs, activation):
    """Independent reference of the masked network: the full (uncompacted) params in NumPy."""
    act = np.tanh if activation == "tanh" else (lambda x: np.maximum(x, 0))
    h = obs.astype(np.float64)
    for layer in params[:-1]:
        h = act(h @ layer["kernel"] + layer["bias"])
    return h @ params[-1]["kernel"] + params[-1]["bias"]


def _observations(n=64, size=4, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, size)).astype(np.float32)


@pytest.mark.parametrize("member", range(3))
def test_npz_round_trip_equals_the_masked_network(ppo_run, tmp_path, member):
    run_dir, (params, neuron) = ppo_run
    path = tmp_path / "policy.npz"
    export_policy(run_dir, member, path)
    policy = load_policy(path)
    obs = _observations()
    masked = np.asarray(chain_apply(params[member], obs, "tanh")[0])
    np.testing.assert_allclose(policy(obs), masked, atol=1e-5)
    np.testing.assert_allclose(policy(obs), numpy_mlp(params[member], obs, "tanh"), atol=1e-5)
    np.testing.assert_allclose(policy(obs[3]), masked[3], atol=1e-5)  # one observation, unbatched
    np.testing.assert_array_equal(policy.act(obs), np.argmax(masked, -1))
    alive = [int(m.sum()) for m in neuron[member]]
    assert [k.shape for k, _ in policy.layers] == [(4, alive[0]), (alive[0], alive[1]), (alive[1], 2)]
    assert all(k.dtype == np.float32 and b.dtype == np.float32 for k, b in policy.layers)


def test_unstructured_weight_masks_and_relu_round_trip(dqn_run, tmp_path):
    run_dir, (params, _) = dqn_run
    for member in (0, 1):
        path = tmp_path / f"q{member}.npz"
        export_policy(run_dir, member, path)
        policy = load_policy(path)
        assert policy.activation == "relu"
        obs = _observations(seed=member)
        np.testing.assert_allclose(policy(obs), np.asarray(chain_apply(params[member], obs, "relu")[0]), atol=1e-5)


def test_forward_is_the_documented_layer_chain(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    path = tmp_path / "policy.npz"
    export_policy(run_dir, 0, path)
    with np.load(path, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted(f"layer{i}_{p}" for i in range(3) for p in ("kernel", "bias"))
        layers = [(arrays[f"layer{i}_kernel"], arrays[f"layer{i}_bias"]) for i in range(3)]
    obs = _observations()
    np.testing.assert_allclose(forward(layers, obs, "tanh"), load_policy(path)(obs), atol=0)


def test_the_default_member_is_the_best_one_that_did_not_diverge(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    manifest = export_policy(run_dir, out=tmp_path / "best.npz")
    assert manifest["member"]["index"] == 1  # 180: member 3 has 500 but diverged
    assert manifest["path"] == str(tmp_path / "best.npz")


def test_default_path_is_inside_the_run_directory(dqn_run):
    run_dir, _ = dqn_run
    manifest = export_policy(run_dir)
    assert manifest["path"] == str(run_dir / "export" / "member1.npz")
    assert (run_dir / "export" / "member1.npz.json").is_file()


def test_manifest_says_what_the_policy_is_and_where_it_came_from(ppo_run, tmp_path):
    run_dir, (params, neuron) = ppo_run
    path = tmp_path / "policy.npz"
    manifest = export_policy(run_dir, 0, path)
    on_disk = json.loads(manifest_path(path).read_text())
    assert on_disk == {k: v for k, v in manifest.items() if k not in ("path", "manifest_path")}
    assert on_disk["format"] == "dspjax-policy" and on_disk["format_version"] == 1
    assert on_disk["file"] == "policy.npz" and on_disk["file_format"] == "npz"
    assert on_disk["network"] == "actor" and on_disk["activation"] == "tanh"
    assert on_disk["layer_sizes"] == [4, 5, 3, 2] and on_disk["observation_size"] == 4
    assert on_disk["action_space"] == {"type": "discrete", "n": 2} and on_disk["outputs"] == "logits"
    assert on_disk["arrays"] == ["layer0_kernel", "layer0_bias", "layer1_kernel", "layer1_bias",
                                 "layer2_kernel", "layer2_bias"]
    comp = on_disk["compression"]
    dense = 4 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2
    kept = 4 * 5 + 5 + 5 * 3 + 3 + 3 * 2 + 2
    assert comp["dense_layer_sizes"] == [4, 16, 8, 2] and comp["dense_params"] == dense
    assert comp["compact_params"] == kept and comp["bytes"] == 4 * kept
    assert comp["neurons_removed"] == pytest.approx(1 - 8 / 24)
    assert comp["weights_removed"] == pytest.approx(1 - kept / dense)
    assert on_disk["member"] == {"index": 0, "seed": 0, "grid_point": {"method": "dsp"}, "final_return": 120.0,
                                 "hparams": {"lam": 2e-4, "c_final": 0.9}}
    assert on_disk["env"] == {"id": "CartPole-v1", "env_config": {}}
    assert on_disk["agent"]["algo"] == "ppo" and on_disk["agent"]["config"]["hidden_sizes"] == [16, 8]
    assert isinstance(on_disk["dspjax_version"], str)


def test_the_loader_imports_no_jax():
    code = ("import sys, dspjax.policy_file; "
            "assert not any(m == 'jax' or m.startswith(('jax.', 'jaxlib', 'flax')) for m in sys.modules), "
            "sorted(m for m in sys.modules if 'jax' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_loader_never_unpickles(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    path = tmp_path / "policy.npz"
    export_policy(run_dir, 0, path)
    np.savez(path, layer0_kernel=np.array([{"evil": 1}], dtype=object))  # an object array needs pickle
    with pytest.raises(ValueError, match="allow_pickle"):
        load_policy(path)


def test_onnx_round_trip_through_onnxruntime(ppo_run, dqn_run, tmp_path):
    pytest.importorskip("jax2onnx")
    ort = pytest.importorskip("onnxruntime")
    for (run_dir, (params, _)), member, activation in ((ppo_run, 0, "tanh"), (dqn_run, 1, "relu")):
        path = tmp_path / f"{activation}.onnx"
        manifest = export_policy(run_dir, member, path)
        assert manifest["file_format"] == "onnx" and manifest["onnx"]["input"] == "observation"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for obs in (_observations(), _observations(1)):
            out = session.run([manifest["onnx"]["output"]], {manifest["onnx"]["input"]: obs})[0]
            np.testing.assert_allclose(out, np.asarray(chain_apply(params[member], obs, activation)[0]), atol=1e-5)


def _refused(match, *args, **kwargs):
    with pytest.raises(ConfigError, match=match):
        export_policy(*args, **kwargs)


def test_a_run_without_a_final_checkpoint_is_refused(tmp_path):
    run_dir = tmp_path / "interrupted"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"algo": "ppo", "config": {}}))
    _refused(r"run_dir=.*has no final checkpoint/ \(the run did not finish\)", run_dir)
    (run_dir / "checkpoint").mkdir()
    _refused(r"run_dir=.*has no summary.json \(the run did not finish\)", run_dir)
    _refused(r"run_dir=.*no config.json", tmp_path / "nothing")


def test_an_unknown_member_names_the_range(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    _refused(r"member=4: must be in 0\.\.3 \(the run has 4 member", run_dir, 4, tmp_path / "p.npz")
    _refused(r"member=-1: must be in 0\.\.3", run_dir, -1, tmp_path / "p.npz")


def test_an_existing_file_is_not_overwritten_unless_forced(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    path = tmp_path / "policy.npz"
    export_policy(run_dir, 0, path)
    before = path.read_bytes(), manifest_path(path).read_bytes()
    _refused(r"out=.*policy\.npz': exists; nothing was overwritten \(--force", run_dir, 1, path)
    assert (path.read_bytes(), manifest_path(path).read_bytes()) == before
    manifest_only = tmp_path / "other.npz"
    manifest_path(manifest_only).write_text("keep me")
    _refused(r"other\.npz\.json': exists", run_dir, 1, manifest_only)
    assert manifest_path(manifest_only).read_text() == "keep me" and not manifest_only.exists()
    export_policy(run_dir, 1, path, force=True)
    assert load_policy(path).manifest["member"]["index"] == 1


def test_bad_output_paths_are_refused(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    a_file = tmp_path / "file"
    a_file.write_text("")
    _refused(r"out=.*: cannot create its directory", run_dir, 0, a_file / "policy.npz")
    _refused(r"out=.*policy\.pt': the file name must end in \.npz or \.onnx", run_dir, 0, tmp_path / "policy.pt")
    _refused(r"out=.*policy\.npz': a onnx file must end in \.onnx", run_dir, 0, tmp_path / "policy.npz", "onnx")
    (tmp_path / "dir.npz").mkdir()
    _refused(r"out=.*dir\.npz': is a directory", run_dir, 0, tmp_path / "dir.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npz", "file"]


def test_onnx_without_the_extra_says_how_to_install_it(ppo_run, tmp_path, monkeypatch):
    run_dir, _ = ppo_run
    monkeypatch.setattr(export_module, "onnx_available", lambda: False)
    _refused(r"format=onnx: .*pip install dspjax\[onnx\]", run_dir, 0, tmp_path / "p.onnx")
    _refused(r"pip install dspjax\[onnx\]", run_dir, 0, None, "onnx")
    assert not (tmp_path / "p.onnx").exists()


def test_the_readmes_standalone_numpy_loader_reads_an_export(ppo_run, tmp_path):
    """The README's copy-paste loader (fenced ``python3``: tests/test_readme.py runs every
    ``python`` block in an empty directory, and this one needs an exported policy)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (snippet,) = re.findall(r"```python3\n(.*?)```", readme, flags=re.S)
    assert "dspjax" not in snippet and "allow_pickle=False" in snippet
    run_dir, _ = ppo_run
    export_policy(run_dir, 0, tmp_path / "policy.npz")
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=True)
    expected = load_policy(tmp_path / "policy.npz").act(np.zeros(4, np.float32))
    assert proc.stdout.strip() == str(int(expected))
