"""Reports of any agent's run: the table has two columns per network (PPO's as they always were),
and the plots are drawn for one network as for two."""

import csv
import json

import numpy as np

from dspjax.train.report import _smooth, draw_plots, format_table


def member(i, nets, diverged=False):
    figures = {"neurons_removed": 0.5, "weights_removed": 0.75, "alive_per_layer": [4, 3],
               "stopped_by": ["rule", "floor"], "compact_sizes": [4, 4, 3, 2], "dense_params": 42}
    return {"member": i, "seed": i, "grid_point": {"method": "dsp"}, "final_return": 12.34,
            "diverged": diverged, **{net: figures for net in nets}}


def test_ppo_table_keeps_its_columns():
    summary = {"members": [member(0, ["actor", "critic"]), member(1, ["actor", "critic"], True)]}
    lines = format_table(summary).splitlines()
    assert lines[0].split("  ") == ["#", "seed", "hyperparameters", "return", "actor neurons-%",
                                    "actor weights-%", "critic neurons-%", "critic weights-%",
                                    "actor alive", "stopped by"]
    assert lines[2].split() == ["0", "0", "method=dsp", "12.3", "50.0", "75.0", "50.0", "75.0",
                                "4-3", "rule/floor"]
    assert lines[3].endswith("DIVERGED")


def test_dqn_table_has_q_columns_whether_or_not_the_summary_names_its_networks():
    for summary in ({"networks": ["q"], "members": [member(0, ["q"])]},
                    {"members": [member(0, ["q"])]}):
        lines = format_table(summary).splitlines()
        assert lines[0].split("  ") == ["#", "seed", "hyperparameters", "return", "q neurons-%",
                                        "q weights-%", "q alive", "stopped by"]
        assert lines[2].split() == ["0", "0", "method=dsp", "12.3", "50.0", "75.0", "4-3", "rule/floor"]


def test_a_network_with_nothing_removed_has_no_stop_reason():
    record = member(0, ["q"])
    record["q"] = {**record["q"], "neurons_removed": 0.0}
    assert format_table({"members": [record]}).splitlines()[2].split()[-1] == "-"


def test_a_run_written_before_stop_reasons_were_recorded_shows_a_question_mark():
    record = member(0, ["q"])
    del record["q"]["stopped_by"]
    assert format_table({"members": [record]}).splitlines()[2].split()[-1] == "?"


def test_plots_of_a_one_network_run(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(
        {"env_id": "CartPole-v1", "networks": ["q"], "members": [member(0, ["q"])]}))
    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member", "seed", "iteration", "timesteps", "episodes", "episode_return",
                    "q_alive_neurons"])
        for t in range(30):  # an episode ends only every third iteration, as in DQN
            w.writerow([0, 0, t, 8 * (t + 1), int(t % 3 == 2), 10.0 * (t % 3 == 2), 8 - t // 10])
    paths = draw_plots(tmp_path)
    assert [p.name for p in paths] == ["return_curves.png", "alive_neurons.png",
                                       "return_vs_weights_removed.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_smoothing_is_a_trailing_mean():
    x = np.arange(1.0, 13.0)
    expected = [np.mean(x[max(0, t - 9): t + 1]) for t in range(12)]
    np.testing.assert_allclose(_smooth(x), expected)
