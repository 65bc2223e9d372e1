"""Reports of any agent's run: the table has two columns per network (PPO's as they always were),
the plots are drawn for one network as for two, and the seed statistics group the members by
grid point (``dspjax report`` prints them and writes them into the run directory)."""

import csv
import json

import numpy as np

from dspjax.cli import main
from dspjax.train.report import (
    _smooth,
    draw_plots,
    format_seed_stats,
    format_table,
    seed_groups,
    seed_stats,
    write_seed_stats,
)
from dspjax.train.seed_stats import iqm_interval


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


def write_small_run(run_dir, members, nets):
    """A run directory without training: ``summary.json`` of ``members`` and a ``metrics.csv`` of
    30 iterations in which an episode ends every third (as in DQN)."""
    (run_dir / "summary.json").write_text(json.dumps(
        {"env_id": "CartPole-v1", "networks": nets, "members": members}))
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member", "seed", "iteration", "timesteps", "episodes", "episode_return",
                    *[f"{net}_alive_neurons" for net in nets]])
        for m in members:
            for t in range(30):
                w.writerow([m["member"], m["seed"], t, 8 * (t + 1), int(t % 3 == 2), 10.0 * (t % 3 == 2),
                            *[8 - t // 10] * len(nets)])
    return run_dir


def test_plots_of_a_one_network_run(tmp_path):
    paths = draw_plots(write_small_run(tmp_path, [member(0, ["q"])], ["q"]))
    assert [p.name for p in paths] == ["return_curves.png", "alive_neurons.png",
                                       "return_vs_weights_removed.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


RETURNS = {"dense": [500.0, 480.0, 20.0, 495.0], "dsp": [470.0, 500.0, 410.0, 90.0, 455.0]}


def sweep_members():
    """Two grid points, dense with 4 seeds and dsp with 5, their members interleaved, and one dsp
    member at λ 0.01 alone; actor figures that differ per seed."""
    members = []
    for seed in range(5):
        for method in ("dense", "dsp"):
            if seed < len(RETURNS[method]):
                r = member(len(members), ["actor", "critic"])
                r["seed"], r["grid_point"] = seed, {"method": method, "lam": 0.001}
                r["final_return"] = RETURNS[method][seed]
                r["actor"] = {**r["actor"], "weights_removed": 0.0 if method == "dense" else 0.9 + 0.01 * seed,
                              "alive_per_layer": [64, 64] if method == "dense" else [10 + seed, 5]}
                members.append(r)
    lone = member(len(members), ["actor", "critic"])
    lone["seed"], lone["grid_point"], lone["final_return"] = 0, {"method": "dsp", "lam": 0.01}, 321.0
    return members + [lone]


def test_seed_groups_put_the_members_of_one_grid_point_together():
    groups = seed_groups({"members": sweep_members()})
    assert [[r["grid_point"] for r in g][0] for g in groups] == [
        {"method": "dense", "lam": 0.001}, {"method": "dsp", "lam": 0.001}, {"method": "dsp", "lam": 0.01}]
    assert [[r["seed"] for r in g] for g in groups] == [[0, 1, 2, 3], [0, 1, 2, 3, 4], [0]]
    assert all(len({json.dumps(r["grid_point"]) for r in g}) == 1 for g in groups)


def test_seed_stats_per_grid_point():
    stats = seed_stats({"networks": ["actor", "critic"], "members": sweep_members()})
    assert stats["network"] == "actor" and "2000 resamples" in stats["statistic"]
    dense, dsp, lone = stats["groups"]
    assert (dense["label"], dense["seeds"]) == ("method=dense, lam=0.001", [0, 1, 2, 3])
    assert (dense["return_iqm"], *dense["return_ci95"]) == tuple(iqm_interval(RETURNS["dense"]))
    assert dsp["return_iqm"] == np.mean(sorted(RETURNS["dsp"])[1:4])
    assert dsp["weights_removed_mean"] == np.mean([0.9 + 0.01 * s for s in range(5)])
    assert dsp["alive_per_layer_mean"] == [12.0, 5.0]
    assert (lone["return_iqm"], lone["return_ci95"]) == (321.0, None)


def test_seed_stats_table_has_one_row_per_grid_point_and_no_interval_for_one_seed():
    stats = seed_stats({"networks": ["actor", "critic"], "members": sweep_members()})
    lines = format_seed_stats(stats).splitlines()
    assert [c.strip() for c in lines[0].split("  ") if c.strip()] == [
        "hyperparameters", "seeds", "return IQM", "95% CI", "actor neurons-% (mean)",
        "actor weights-% (mean)", "actor alive (mean)"]
    assert len(lines) == 2 + 3
    iqm, low, high = iqm_interval(RETURNS["dsp"])
    assert lines[3].split() == ["method=dsp,", "lam=0.001", "5", f"{iqm:.1f}", f"[{low:.1f},", f"{high:.1f}]",
                                "50.0", "92.0", "12-5"]
    assert lines[4].split()[2:5] == ["1", "321.0", "-"]


def test_the_seed_stats_file_and_plot(tmp_path):
    summary = {"networks": ["actor", "critic"], "members": sweep_members()}
    stats, paths = write_seed_stats(tmp_path, summary)
    assert [p.name for p in paths] == ["seed_stats.json", "return_iqm.png"]
    assert json.loads(paths[0].read_text()) == stats
    assert paths[1].read_bytes()[:4] == b"\x89PNG"


def test_dspjax_report_prints_both_tables_and_writes_the_seed_stats(tmp_path, capsys):
    run_dir = write_small_run(tmp_path, sweep_members(), ["actor", "critic"])
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    per_member, seeds = out.split("seed statistics per grid point")
    assert len(per_member.strip().splitlines()) == 2 + 10
    assert seeds.splitlines()[1].split()[:6] == ["hyperparameters", "seeds", "return", "IQM", "95%", "CI"]
    assert "method=dsp, lam=0.01 " in seeds and "return_iqm.png" in out
    stats = json.loads((run_dir / "seed_stats.json").read_text())
    assert [len(g["seeds"]) for g in stats["groups"]] == [4, 5, 1]
    assert (run_dir / "return_iqm.png").is_file()


def test_smoothing_is_a_trailing_mean():
    x = np.arange(1.0, 13.0)
    expected = [np.mean(x[max(0, t - 9): t + 1]) for t in range(12)]
    np.testing.assert_allclose(_smooth(x), expected)
