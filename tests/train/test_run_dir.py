"""Run directories: what a run writes, reading it back, refusing a broken one, and the plots."""

import json

import numpy as np
import pytest

from dspjax.agents import PPOConfig, PPOHParams, make_train
from dspjax.agents.ppo import networks
from dspjax.hparams import ConfigError
from dspjax.pruning import chain_layers
from dspjax.train import build_population, run_population
from dspjax.train.report import draw_plots, format_table
from dspjax.train.run_dir import block_metrics, load_run, read_metrics_csv, write_metrics_csv, write_run

TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10, update_epochs=1,
                 num_minibatches=2, hidden_sizes=(12, 6), eval_episodes=3)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    sweep = {"method": ["dsp"], "c_final": [0.5, 0.9]}
    members = build_population(PPOHParams(), sweep, seeds=[0, 1])
    result = run_population(make_train, TINY, members, progress=False)
    run_dir = tmp_path_factory.mktemp("run")
    summary = write_run(run_dir, "ppo", TINY, PPOHParams(), sweep, [0, 1], result)
    return run_dir, result, summary


def test_summary_has_one_record_per_member_with_its_figures(written):
    run_dir, result, summary = written
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert [r["member"] for r in on_disk["members"]] == [0, 1, 2, 3]
    for r in on_disk["members"]:
        i = r["member"]
        assert r["final_return"] == pytest.approx(float(np.mean(result.eval_returns[i])))
        for net in ("actor", "critic"):
            alive = r[net]["alive_per_layer"]
            assert r[net]["compact_sizes"][1:-1] == alive
            assert r[net]["neurons_removed"] == pytest.approx(1 - sum(alive) / 18)
    assert on_disk["members"][0]["grid_point"] == {"method": "dsp", "c_final": 0.5}


def test_metrics_csv_reads_back_what_was_trained(written):
    run_dir, result, _ = written
    table = read_metrics_csv(run_dir / "metrics.csv")
    assert table["episode_return"].shape == (4, TINY.num_iterations)
    np.testing.assert_allclose(table["episode_return"], result.metrics["episode_return"], rtol=1e-5)
    np.testing.assert_array_equal(table["actor_alive_neurons"], result.metrics["actor_alive_neurons"])


def test_long_runs_are_logged_in_blocks_of_iterations():
    rng = np.random.default_rng(0)
    episodes = rng.integers(0, 3, size=(2, 10))
    returns = np.where(episodes > 0, rng.normal(size=(2, 10)), 0.0)
    alive = np.cumsum(-rng.integers(0, 2, size=(2, 10)), axis=1) + 20
    last, merged = block_metrics({"episodes": episodes, "episode_return": returns, "alive": alive}, 4)
    np.testing.assert_array_equal(last, [3, 7, 9])
    for i in range(2):
        for j, (a, b) in enumerate([(0, 4), (4, 8), (8, 10)]):
            n = episodes[i, a:b].sum()
            assert merged["episodes"][i, j] == n
            expected = (episodes[i, a:b] * returns[i, a:b]).sum() / n if n else 0.0
            assert merged["episode_return"][i, j] == pytest.approx(expected)
            assert merged["alive"][i, j] == alive[i, b - 1]
    same_last, same = block_metrics({"episodes": episodes}, 1)
    assert same["episodes"] is episodes and list(same_last) == list(range(10))


def test_metrics_csv_has_at_most_max_rows_per_member(written, tmp_path):
    _, result, _ = written
    write_metrics_csv(tmp_path / "metrics.csv", result.members, result.metrics, max_rows=4)
    table = read_metrics_csv(tmp_path / "metrics.csv")
    n_iter = TINY.num_iterations   # 10: blocks of 3 iterations, the last one shorter
    np.testing.assert_array_equal(table["iteration"][0], [2, 5, 8, 9])
    np.testing.assert_array_equal(table["actor_alive_neurons"], result.metrics["actor_alive_neurons"][:, [2, 5, 8, 9]])
    np.testing.assert_array_equal(table["episodes"].sum(1), result.metrics["episodes"][:, :n_iter].sum(1))


def test_config_and_checkpoint_round_trip(written):
    run_dir, result, _ = written
    cfg, tree = load_run(run_dir)
    assert cfg["config"]["hidden_sizes"] == [12, 6] and cfg["seeds"] == [0, 1]
    assert cfg["members"][3]["hparams"]["c_final"] == pytest.approx(0.9)
    assert cfg["members"][3]["hparams"]["threshold_rule"] == "relative"
    for net, chain in networks(TINY).items():  # each network saved as its declared layers
        for saved, trained in zip(tree["params"][net], chain_layers(result.final_state.params, chain)):
            np.testing.assert_array_equal(saved["kernel"], trained["kernel"])
            np.testing.assert_array_equal(saved["bias"], trained["bias"])
        for saved, trained in zip(tree["neuron_masks"][net],
                                  result.final_state.dsp.pruners[net].neuron_masks):
            np.testing.assert_array_equal(saved, trained)


def test_a_broken_run_directory_gives_one_clear_error(written, tmp_path):
    run_dir, _, _ = written
    with pytest.raises(ConfigError, match="no config.json"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text((run_dir / "config.json").read_text())
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "garbage").write_text("x")
    with pytest.raises(ConfigError, match="checkpoint cannot be read"):
        load_run(tmp_path)


def test_plots_and_table(written):
    run_dir, _, summary = written
    paths = draw_plots(run_dir)
    assert sorted(p.name for p in paths) == ["alive_neurons.png", "return_curves.png",
                                              "return_vs_weights_removed.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    lines = format_table(summary).splitlines()
    assert len(lines) == 2 + 4
    assert "c_final=0.9" in lines[-1] and "return" in lines[0]
