"""The ``dspjax`` command: bad input exits 2 with one line before anything compiles; small
trains of PPO and DQN, on gymnax and bridged gymnasium environments, and of SAC on Pendulum-v1,
and report, eval, export and the eval video work end to end."""

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from dspjax.cli import main
from dspjax.train.video import CAPTION_HEIGHT

ENVS_TESTS = str(Path(__file__).parent / "envs")

SMALL = ["--steps", "1536", "--num-envs", "4", "--num-steps", "32", "--epochs", "1",
         "--minibatches", "2", "--hidden", "16,8", "--eval-episodes", "2", "--no-progress"]


@pytest.mark.parametrize("argv,field", [
    (["train", "--env", "NoSuchEnv-v9"], "env='NoSuchEnv-v9'"),
    (["train", "--lam", "-1"], "lam=-1"),
    (["train", "--c-final", "1.5"], "c_final=1.5"),
    (["train", "--prune-start", "0.6", "--prune-end", "0.5"], "prune_start=0.6 must be < prune_end=0.5"),
    (["train", "--importance", "psychic"], "importance='psychic': must be one of taylor"),
    (["train", "--sweep", "c_final=0.5,2"], "c_final=2"),
    (["train", "--sweep", "no_such=1,2"], "unknown hyperparameter 'no_such'"),
    (["train", "--sweep", "lam"], "expected NAME=V1,V2"),
    (["train", "--method", "magic"], "method='magic'"),
    (["train", "--algo", "a3c"], "algo='a3c'"),
    (["train", "--seeds", "0"], "seeds=0"),
    (["train", "--minibatches", "3"], "num_minibatches=3"),
    (["train", "--critic-hidden", "64,0"], "critic_hidden_sizes=(64, 0)"),
    (["train", "--algo", "dqn", "--critic-hidden", "64"],
     "--critic-hidden is an option of ppo, sac, not of --algo dqn"),
    (["train", "--lr", "inf"], "lr=inf"),
    (["train", "--steps", "ten"], "--steps"),
    (["train", "--eps-start", "0.5"], "--eps-start is a hyperparameter of dqn, not of --algo ppo"),
    (["train", "--algo", "dqn", "--gae-lambda", "0.9"],
     "--gae-lambda is a hyperparameter of ppo, not of --algo dqn"),
    (["train", "--algo", "dqn", "--sweep", "clip_eps=0.1,0.2"],
     "--sweep clip_eps is a hyperparameter of ppo, not of --algo dqn"),
    (["train", "--algo", "dqn", "--sweep", "no_such=1"], "unknown hyperparameter 'no_such'"),
    (["train", "--algo", "dqn", "--eps-end", "1.5"], "eps_end=1.5"),
    (["train", "--buffer-size", "100"], "--buffer-size is an option of dqn, sac, not of --algo ppo"),
    (["train", "--algo", "dqn", "--epochs", "2"], "--epochs is an option of ppo, not of --algo dqn"),
    (["train", "--algo", "dqn", "--batch-size", "0"], "batch_size=0"),
    (["train", "--algo", "dqn", "--env", "NoSuchEnv-v9"], "env='NoSuchEnv-v9'"),
    (["train", "--env", "gymnasium:CartPole-v1", "--env-config", "{bad"], "env_config: not valid JSON"),
    (["train", "--algo", "dqn", "--env", "highway-fast-v0", "--env-config", "/no/such.json"],
     "env_config='/no/such.json': neither a JSON object nor a JSON file"),
    (["train", "--env", "CartPole-v1", "--env-config", '{"duration": 3}'], "gymnax environment"),
    (["train", "--env", "highway-fast-v0", "--env-config", '{"vehicle_density": 2}'],
     "env_config: unknown key 'vehicle_density' for highway-fast-v0 (did you mean 'vehicles_density'?)"),
    (["train", "--env", "LunarLander-v3", "--env-config", '{"gravity": -5}'],
     "env_config: LunarLander-v3 takes no config"),
    (["train", "--env", "gymnasium:CartPole-v1", "--env-workers", "-1"], "env_workers=-1"),
    (["eval", "/no/such/run"], "no config.json"),
    (["eval", "/no/such/run", "--video", "out.avi"], "must end in .gif or .mp4"),
    (["report", "/no/such/run"], "needs summary.json"),
    (["export", "/no/such/run"], "no config.json"),
    (["export", "/no/such/run", "--member", "1", "--best"], "--best: not allowed with argument --member"),
    (["export", "/no/such/run", "--format", "pdf"], "--format: invalid choice: 'pdf'"),
    (["export", "/no/such/run", "--member", "one"], "--member"),
])
def test_bad_input_exits_2_with_one_line_naming_the_field(argv, field, capsys):
    with pytest.raises(SystemExit) as exit_:
        sys.exit(main(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dspjax: error:")
    assert field in err


def test_a_real_process_prints_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "dspjax", "train", "--lam=-0.5"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dspjax: error: lam=-0.5: must be a number in [0, inf)"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """PPO, dense and DSP, 2 x 2 members. The run has 12 iterations, so the schedule threshold prunes
    every 2nd (the default every 5th would not reach one inside the 0.1-0.4 window)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *SMALL, "--seeds", "1", "--sweep", "method=dense,dsp",
                 "--sweep", "c_final=0.5,0.9", "--threshold-rule", "schedule", "--prune-every", "2",
                 "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_directory_and_prints_the_table(run_dir, capsys):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "summary.json", "checkpoint", "return_curves.png",
            "alive_neurons.png", "return_vs_weights_removed.png"} <= names
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["members"]) == 4
    assert {m["grid_point"]["c_final"] for m in summary["members"]} == {0.5, 0.9}
    assert [m["grid_point"]["method"] for m in summary["members"]] == ["dense"] * 2 + ["dsp"] * 2
    assert summary["networks"] == ["actor", "critic"]
    assert json.loads((run_dir / "config.json").read_text())["algo"] == "ppo"


def test_an_existing_run_directory_is_never_overwritten(run_dir, capsys):
    before = (run_dir / "summary.json").read_bytes()
    assert main(["train", *SMALL, "--out", str(run_dir)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert (run_dir / "summary.json").read_bytes() == before


def test_a_file_as_run_directory_or_a_broken_summary_is_refused(run_dir, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    assert main(["train", *SMALL, "--out", str(a_file)]) == 2
    assert a_file.read_text() == "keep me"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.csv").write_text((run_dir / "metrics.csv").read_text())
    (broken / "summary.json").write_text("{")
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dspjax: error: run_dir=") and "summary.json is not valid JSON" in err[-1]


def test_report_redraws_the_plots(run_dir, capsys):
    (run_dir / "return_curves.png").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "return_curves.png").is_file()
    out = capsys.readouterr().out
    assert "c_final=0.5" in out and "return_vs_weights_removed.png" in out
    header = [c.strip() for c in out.splitlines()[0].split("  ") if c.strip()]
    assert header[3:] == ["return", "actor neurons-%", "actor weights-%", "critic neurons-%",
                          "critic weights-%", "actor alive", "stopped by"]
    seed_rows = out.split("seed statistics per grid point")[1].split("\n\n")[0].splitlines()[3:]
    assert len(seed_rows) == 4  # one seed per grid point: its return, no interval
    cells = [[c.strip() for c in row.split("  ") if c.strip()] for row in seed_rows]
    members = [[c.strip() for c in row.split("  ") if c.strip()] for row in out.splitlines()[2:6]]
    assert [c[:4] for c in cells] == [[m[2], "1", m[3], "-"] for m in members]
    stats = json.loads((run_dir / "seed_stats.json").read_text())
    assert [g["return_ci95"] for g in stats["groups"]] == [None] * 4
    assert (run_dir / "return_iqm.png").is_file() and "seed_stats.json" in out


def test_eval_plays_the_masked_and_the_compact_policy(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 4
    for row in rows:
        masked, compact_ = float(row[2]), float(row[3])
        assert masked == compact_  # same greedy policy, physically smaller


def test_eval_can_sample_from_the_actor_instead_of_taking_its_argmax(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "3", "--policy", "sample"]) == 0
    captured = capsys.readouterr()
    assert "sample policy" in captured.err
    rows = [line.split() for line in captured.out.splitlines()[1:]]
    assert len(rows) == 4
    for row in rows:
        assert float(row[2]) == float(row[3])  # the same draws from the same softmax, smaller


def test_eval_refuses_to_sample_a_dqn_policy_or_a_video(run_dir, dqn_run_dir, tmp_path, capsys):
    for argv, field in (([str(dqn_run_dir), "--policy", "sample"], "policy=sample: dqn is evaluated by its greedy"),
                        ([str(run_dir), "--policy", "sample", "--video", str(tmp_path / "v.gif")],
                         "policy=sample: a video shows the greedy policy")):
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and field in err
    assert not (tmp_path / "v.gif").exists()


def _drawn(gif) -> bool:
    """Whether the panels of a GIF's second frame (below the captions) show a picture."""
    gif.seek(1)
    return bool(np.asarray(gif.convert("RGB"))[CAPTION_HEIGHT:].std() > 0)


def _cartpole_frame_width():
    from dspjax.agents.ppo import PPOConfig
    from dspjax.train.video import make_render_env
    env = make_render_env(PPOConfig(env_id="CartPole-v1"))
    env.reset(seed=0)
    width = env.render().shape[1]
    env.close()
    return width


def test_eval_video_gif_shows_dense_and_compact_side_by_side(run_dir, tmp_path, capsys):
    path = tmp_path / "episode.gif"
    assert main(["eval", str(run_dir), "--video", str(path), "--video-seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "left: member 0 (dense)" in out or "left: member 1 (dense)" in out
    assert "right: member 2 (pruned)" in out or "right: member 3 (pruned)" in out
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.size[0] == 2 * _cartpole_frame_width()
        assert gif.n_frames > 1
        assert _drawn(gif)


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # ffmpeg: fork + exec
def test_eval_video_mp4_decodes(run_dir, tmp_path):
    path = tmp_path / "episode.mp4"
    assert main(["eval", str(run_dir), "--video", str(path)]) == 0
    assert path.stat().st_size > 0
    with imageio.get_reader(path) as reader:
        frames = list(reader.iter_data())
    assert len(frames) > 1 and frames[0].shape[1] == 2 * _cartpole_frame_width()


DQN_SMALL = ["--algo", "dqn", "--num-envs", "4", "--buffer-size", "200", "--batch-size", "16",
             "--learning-starts", "40", "--hidden", "16,8", "--eval-episodes", "2", "--no-progress"]


@pytest.fixture(scope="module")
def dqn_run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "dqn"
    assert main(["train", *DQN_SMALL, "--steps", "400", "--seeds", "2", "--out", str(out)]) == 0
    return out


def test_dqn_trains_from_the_command_line_with_its_own_networks(dqn_run_dir, capsys):
    cfg = json.loads((dqn_run_dir / "config.json").read_text())
    assert cfg["algo"] == "dqn" and cfg["networks"] == ["q"]
    assert cfg["config"]["buffer_size"] == 200 and cfg["config"]["activation"] == "relu"
    summary = json.loads((dqn_run_dir / "summary.json").read_text())
    assert summary["networks"] == ["q"] and len(summary["members"]) == 2
    assert "q" in summary["members"][0] and "actor" not in summary["members"][0]
    assert main(["report", str(dqn_run_dir)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "q neurons-%" in header and "q weights-%" in header and "actor" not in header


def test_dqn_eval_plays_the_q_network_masked_and_compact(dqn_run_dir, capsys):
    assert main(["eval", str(dqn_run_dir), "--episodes", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 2
    for row in rows:
        assert float(row[2]) == float(row[3])
        assert row[4].startswith("4x") and row[4].endswith("x2")  # CartPole: 4 inputs, 2 actions


def test_dqn_on_a_bridged_gymnasium_env(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *DQN_SMALL, "--env", "gymnasium:CartPole-v1", "--env-workers", "0",
                 "--steps", "200", "--seeds", "1", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["env_id"] == "gymnasium:CartPole-v1" and cfg["config"]["env_workers"] == 0
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  0")]
    assert len(rows) == 1 and float(rows[0][2]) == float(rows[0][3]) >= 8


def test_dqn_on_highway_with_an_env_config_and_its_video(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *DQN_SMALL, "--env", "highway-fast-v0", "--env-config", '{"duration": 3}',
                 "--env-workers", "0", "--num-envs", "2", "--learning-starts", "8",
                 "--batch-size", "8", "--steps", "24", "--seeds", "1", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_id"] == "highway-fast-v0"
    assert json.loads((out / "config.json").read_text())["config"]["env_config"] == '{"duration": 3}'
    video = tmp_path / "highway.gif"
    assert main(["eval", str(out), "--video", str(video)]) == 0
    with Image.open(video) as gif:
        assert 1 < gif.n_frames <= 4  # 3 s at one decision per second, and the first frame
        assert _drawn(gif)


def test_a_failing_bridged_env_exits_1_with_its_error_and_writes_nothing(run_dir, tmp_path, capsys):
    before = (run_dir / "summary.json").read_bytes()
    out = tmp_path / "run"
    sys.path.insert(0, ENVS_TESTS)
    try:
        code = main(["train", *SMALL, "--env", "raising_env:Raising-v0", "--env-workers", "0",
                     "--seeds", "1", "--out", str(out)])
    finally:
        sys.path.remove(ENVS_TESTS)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dspjax: error: environment 'raising_env:Raising-v0'")
    assert "the simulator broke" in err[-1]
    assert not (out / "summary.json").exists() and not (out / "checkpoint").exists()
    assert (run_dir / "summary.json").read_bytes() == before


def _one_error_line(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dspjax: error:"), err
    for fragment in fragments:
        assert fragment in err, err


def test_export_writes_the_best_members_compact_policy_that_numpy_reads_back(run_dir, tmp_path, capsys):
    import jax

    from dspjax.policy_file import load_policy
    from dspjax.pruning import chain_apply
    from dspjax.train.run_dir import load_run, member_network
    path = tmp_path / "policy.npz"
    assert main(["export", str(run_dir), "--out", str(path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    best = max(summary["members"], key=lambda r: (r["final_return"], -r["member"]))
    policy = load_policy(path)
    assert policy.manifest["member"]["index"] == best["member"]
    assert f"member {best['member']} " in out and str(path) in out and f"{path}.json" in out
    assert policy.manifest["layer_sizes"] == best["actor"]["compact_sizes"]
    _, tree = load_run(run_dir)
    for member in range(4):
        member_path = tmp_path / f"member{member}.npz"
        assert main(["export", str(run_dir), "--member", str(member), "--out", str(member_path)]) == 0
        params, _, _ = member_network(tree, "actor", member)
        obs = np.random.default_rng(member).normal(size=(256, 4)).astype(np.float32)
        masked = np.asarray(jax.jit(lambda p, o: chain_apply(p, o, "tanh")[0])(params, obs))
        np.testing.assert_allclose(load_policy(member_path)(obs), masked, atol=1e-5)


def test_export_of_a_dqn_q_network_to_onnx(dqn_run_dir, tmp_path, capsys):
    pytest.importorskip("jax2onnx")
    ort = pytest.importorskip("onnxruntime")
    from dspjax.pruning import chain_apply
    from dspjax.train.run_dir import load_run, member_network
    assert main(["export", str(dqn_run_dir), "--member", "1", "--format", "onnx"]) == 0
    path = dqn_run_dir / "export" / "member1.onnx"
    manifest = json.loads((dqn_run_dir / "export" / "member1.onnx.json").read_text())
    assert manifest["network"] == "q" and manifest["activation"] == "relu" and manifest["outputs"] == "q_values"
    params, _, _ = member_network(load_run(dqn_run_dir)[1], "q", 1)
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"observation": obs})[0],
                               np.asarray(chain_apply(params, obs, "relu")[0]), atol=1e-5)


def test_export_bad_input_exits_2_with_one_line_and_overwrites_nothing(run_dir, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "summary.json"):
        (unfinished / name).write_bytes((run_dir / name).read_bytes())
    assert main(["export", str(unfinished)]) == 2
    _one_error_line(capsys, "has no final checkpoint/")
    assert main(["export", str(run_dir), "--member", "4"]) == 2
    _one_error_line(capsys, "member=4: must be in 0..3")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["export", str(run_dir), "--out", str(a_file / "policy.npz")]) == 2
    _one_error_line(capsys, "cannot create its directory")
    path = tmp_path / "policy.npz"
    path.write_text("keep me")
    assert main(["export", str(run_dir), "--out", str(path)]) == 2
    _one_error_line(capsys, "exists; nothing was overwritten (--force replaces it)")
    assert path.read_text() == "keep me"
    assert main(["export", str(run_dir), "--out", str(path), "--force"]) == 0
    assert path.read_bytes()[:2] == b"PK"  # a zip archive: the .npz


def test_a_killed_env_worker_exits_1_with_one_line_and_keeps_a_checkpoint_to_resume(tmp_path, capsys):
    """Every env's worker dies on the 40th step of an episode (episodes last 50): in iteration 1
    (32 steps per env an iteration), after the checkpoint of iteration 1; resumed there, the fresh
    episodes reach step 40 again in iteration 2, after the checkpoint of iteration 2."""
    out = tmp_path / "run"
    sys.path.insert(0, ENVS_TESTS)
    try:
        code = main(["train", *SMALL, "--env", "stalling_env:Stalling-v0", "--env-workers", "2",
                     "--env-config", '{"at_step": 40, "then": "die"}', "--seeds", "1",
                     "--segment-length", "1", "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        resumed = main(["train", "--resume", str(out), "--no-progress"])
    finally:
        sys.path.remove(ENVS_TESTS)
    assert code == 1
    assert err[-1].startswith("dspjax: error: environment 'stalling_env:Stalling-v0' (env")
    assert "failed at step 40 after reset: its worker process (pid" in err[-1]
    assert "died (killed by signal 9, SIGKILL)" in err[-1]
    assert err[-1].endswith(f"checkpoint at iteration 1 of 12; go on with: dspjax train --resume {out}")
    assert not (out / "summary.json").exists()
    assert resumed == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "dspjax: going on from the checkpoint at iteration 1 of 12" in err
    assert err[-1].endswith(f"checkpoint at iteration 2 of 12; go on with: dspjax train --resume {out}")


def test_eval_under_another_env_config_merges_it_over_the_runs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *DQN_SMALL, "--env", "highway-fast-v0", "--env-config", '{"duration": 3}',
                 "--env-workers", "0", "--num-envs", "2", "--learning-starts", "8",
                 "--batch-size", "8", "--steps", "24", "--seeds", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    # one decision per second: 1 s episodes have one step, so a return of at most 1 (rewards <= 1)
    assert main(["eval", str(out), "--episodes", "2", "--env-config",
                 '{"duration": 1, "vehicles_density": 2}']) == 0
    captured = capsys.readouterr()
    assert ('on highway-fast-v0 with env_config {"duration": 1, "vehicles_density": 2}, 2 episode(s)'
            in captured.err)
    rows = [line.split() for line in captured.out.splitlines()[1:]]
    assert len(rows) == 1 and 0 < float(rows[0][2]) <= 1
    video = tmp_path / "dense.gif"
    assert main(["eval", str(out), "--video", str(video), "--env-config", '{"lanes_count": 2}']) == 0
    assert 'env_config: {"duration": 3, "lanes_count": 2}' in capsys.readouterr().out
    with Image.open(video) as gif:
        assert 1 < gif.n_frames <= 4  # still the run's 3 s
    for argv, field in (
            (["--env-config", '{"vehicle_density": 2}'],
             "env_config: unknown key 'vehicle_density' for highway-fast-v0 (did you mean "
             "'vehicles_density'?); valid keys: action, "),
            (["--env-config", "{dense"], "env_config: not valid JSON"),
            (["--env-config", "/no/such.json"], "env_config='/no/such.json': neither"),
            (["--video", str(tmp_path / "bad.gif"), "--env-config", '{"lane_count": 2}'],
             "unknown key 'lane_count' for highway-fast-v0 (did you mean 'lanes_count'?)")):
        assert main(["eval", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("dspjax: error: ") and field in err
    assert not (tmp_path / "bad.gif").exists()


def test_eval_refuses_an_env_config_for_an_env_that_takes_none(run_dir, capsys):
    assert main(["eval", str(run_dir), "--env-config", '{"duration": 3}']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "env_config: CartPole-v1 is a gymnax environment" in err


def test_eval_plays_a_run_trained_in_the_jax_highway_port_on_highway_env_itself(tmp_path, capsys):
    """``--env``: a policy trained on ``jax:highway-fast-v0`` is evaluated and filmed on
    highway-env's own ``highway-fast-v0`` (same 25 observation numbers, 5 actions); an env with
    other spaces is refused with one line naming both."""
    out = tmp_path / "run"
    assert main(["train", *DQN_SMALL, "--env", "jax:highway-fast-v0", "--num-envs", "2",
                 "--learning-starts", "8", "--batch-size", "8", "--steps", "24", "--seeds", "1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2", "--env", "highway-fast-v0",
                 "--env-config", '{"duration": 3}']) == 0
    captured = capsys.readouterr()
    assert 'on highway-fast-v0 with env_config {"duration": 3}, 2 episode(s)' in captured.err
    rows = [line.split() for line in captured.out.splitlines()[1:]]
    assert len(rows) == 1 and 0 < float(rows[0][2]) <= 3  # 3 decisions, rewards <= 1
    video = tmp_path / "jax_run.gif"  # a jax: run is filmed in highway-env
    assert main(["eval", str(out), "--video", str(video), "--env-config", '{"duration": 3}']) == 0
    with Image.open(video) as gif:
        assert 1 < gif.n_frames <= 4
    assert main(["eval", str(out), "--env", "CartPole-v1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "env='CartPole-v1': its observations (4 numbers)" in err \
        and "jax:highway-fast-v0 (25, Discrete(5))" in err


SAC_SMALL = ["--algo", "sac", "--env", "Pendulum-v1", "--steps", "200", "--num-envs", "2",
             "--buffer-size", "200", "--batch-size", "16", "--learning-starts", "20", "--hidden", "16,8",
             "--eval-episodes", "2", "--no-progress"]
PENDULUM_WORST_RETURN = -(np.pi ** 2 + 0.1 * 8 ** 2 + 0.001 * 2 ** 2) * 200  # every step at the highest cost


@pytest.fixture(scope="module")
def sac_run_dir(tmp_path_factory):
    """SAC on gymnax Pendulum-v1, dense and DSP, one seed: 100 iterations of 2 envs. The schedule
    threshold every 5th iteration inside SAC's 20-50 % window prunes the DSP member's networks
    towards 5 % of their neurons, so every layer stops at the floor (min_alive 4)."""
    out = tmp_path_factory.mktemp("cli") / "sac"
    assert main(["train", *SAC_SMALL, "--seeds", "1", "--sweep", "method=dense,dsp",
                 "--threshold-rule", "schedule", "--prune-every", "5", "--out", str(out)]) == 0
    return out


def test_sac_trains_from_the_command_line_with_its_actor_and_twin_critics(sac_run_dir, capsys):
    cfg = json.loads((sac_run_dir / "config.json").read_text())
    assert cfg["algo"] == "sac" and cfg["networks"] == ["actor", "q1", "q2"]
    assert cfg["config"]["env_id"] == "Pendulum-v1" and cfg["config"]["hidden_sizes"] == [16, 8]
    assert cfg["config"]["learning_starts"] == 20 and cfg["config"]["buffer_size"] == 200
    summary = json.loads((sac_run_dir / "summary.json").read_text())
    assert summary["networks"] == ["actor", "q1", "q2"] and summary["policy_network"] == "actor"
    dense, dsp = summary["members"]
    assert (dense["grid_point"]["method"], dsp["grid_point"]["method"]) == ("dense", "dsp")
    for net in ("actor", "q1", "q2"):
        assert dense[net]["alive_per_layer"] == [16, 8] and dense[net]["neurons_removed"] == 0.0
        assert dsp[net]["alive_per_layer"] == [4, 4] and dsp[net]["stopped_by"] == ["floor", "floor"]
    assert dsp["actor"]["compact_sizes"] == [3, 4, 4, 2]  # 2 outputs: the mean and its log std
    for m in (dense, dsp):
        assert not m["diverged"] and len(m["eval_returns"]) == 2
        assert all(PENDULUM_WORST_RETURN <= r <= 0 for r in m["eval_returns"])
    assert main(["report", str(sac_run_dir)]) == 0
    header = [c.strip() for c in capsys.readouterr().out.splitlines()[0].split("  ") if c.strip()]
    assert header[3:] == ["return", "actor neurons-%", "actor weights-%", "q1 neurons-%", "q1 weights-%",
                          "q2 neurons-%", "q2 weights-%", "actor alive", "stopped by"]


def test_sac_eval_plays_the_greedy_actor_masked_and_compact(sac_run_dir, capsys):
    assert main(["eval", str(sac_run_dir), "--episodes", "2"]) == 0
    captured = capsys.readouterr()
    assert "sac's actor network of 2 member(s) on Pendulum-v1, 2 episode(s) each, greedy policy" in captured.err
    rows = [line.split() for line in captured.out.splitlines()[1:]]
    assert [row[4] for row in rows] == ["3x16x8x2", "3x4x4x2"]
    for row in rows:
        masked, compact_ = float(row[2]), float(row[3])
        assert masked == compact_  # the same greedy policy, physically smaller
        assert PENDULUM_WORST_RETURN <= masked <= 0
    # SAC's tanh-squashed Gaussian is not offered for sampling: its greedy action is what ships
    assert main(["eval", str(sac_run_dir), "--policy", "sample"]) == 2
    _one_error_line(capsys, "policy=sample: sac is evaluated by its greedy action")


def numpy_squashed_greedy(params, neuron_masks, weight_masks, obs, low=-2.0, high=2.0):
    """SAC's greedy action in NumPy (float64) from a checkpoint's actor: relu hidden layers with
    the masked weights and neurons zeroed; of the two outputs (the Gaussian's mean before tanh,
    then its log std's pre-activation) the action is low + (tanh(mean) + 1) / 2 · (high − low)."""
    h = obs.astype(np.float64)
    for i, (layer, weights) in enumerate(zip(params, weight_masks)):
        h = h @ (layer["kernel"] * weights) + layer["bias"]
        if i < len(neuron_masks):
            h = np.maximum(h, 0.0) * neuron_masks[i]
    assert h.shape[1] == 2
    return low + 0.5 * (np.tanh(h[:, :1]) + 1.0) * (high - low), h


def _pendulum_observations(n=256, seed=0):
    """Pendulum-v1's observations: cos θ, sin θ and the angular velocity in [-8, 8]."""
    rng = np.random.default_rng(seed)
    theta, speed = rng.uniform(-np.pi, np.pi, n), rng.uniform(-8.0, 8.0, n)
    return np.stack([np.cos(theta), np.sin(theta), speed], 1).astype(np.float32)


def test_sac_export_acts_with_the_checkpoints_squashed_mean(sac_run_dir, tmp_path, capsys):
    """The exported compact actor's greedy action (``Policy.act``, NumPy alone) is the one NumPy
    computes from the checkpoint's masked actor: float32 against float64 through layers of
    order-one values, 1e-5 absolute on actions in [-2, 2]."""
    from dspjax.policy_file import SQUASHED_MEAN_AND_LOG_STD, load_policy
    from dspjax.train.run_dir import load_run, member_network
    _, tree = load_run(sac_run_dir)
    obs = _pendulum_observations()
    for member, sizes in ((0, [3, 16, 8, 2]), (1, [3, 4, 4, 2])):
        path = tmp_path / f"member{member}.npz"
        assert main(["export", str(sac_run_dir), "--member", str(member), "--out", str(path)]) == 0
        assert f"actor {'x'.join(map(str, sizes))}" in capsys.readouterr().out
        policy = load_policy(path)
        manifest = policy.manifest
        assert manifest["network"] == "actor" and manifest["layer_sizes"] == sizes
        assert manifest["activation"] == "relu" and manifest["outputs"] == SQUASHED_MEAN_AND_LOG_STD
        assert manifest["action_space"] == {"type": "box", "low": [-2.0], "high": [2.0]}
        assert manifest["agent"]["algo"] == "sac" and manifest["env"]["id"] == "Pendulum-v1"
        expected, outputs = numpy_squashed_greedy(*member_network(tree, "actor", member), obs)
        actions = policy.act(obs)
        assert actions.shape == (256, 1) and np.all(np.abs(actions) <= 2.0)
        np.testing.assert_allclose(policy(obs), outputs, atol=1e-5)
        np.testing.assert_allclose(actions, expected, atol=1e-5)
        assert np.ptp(actions) > 0.01  # the actions depend on the observation


def test_export_of_a_sac_actor_to_onnx(sac_run_dir, tmp_path):
    """ONNX holds the compact actor's raw outputs (mean and log-std pre-activation); the manifest
    says how the greedy action comes from them."""
    pytest.importorskip("jax2onnx")
    ort = pytest.importorskip("onnxruntime")
    from dspjax.train.run_dir import load_run, member_network
    path = tmp_path / "actor.onnx"
    assert main(["export", str(sac_run_dir), "--member", "1", "--out", str(path)]) == 0
    manifest = json.loads((tmp_path / "actor.onnx.json").read_text())
    assert manifest["file_format"] == "onnx" and manifest["outputs"] == "squashed_mean_and_log_std"
    obs = _pendulum_observations(seed=1)
    _, outputs = numpy_squashed_greedy(*member_network(load_run(sac_run_dir)[1], "actor", 1), obs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"observation": obs})[0], outputs, atol=1e-5)


def test_ppo_on_box_actions_starts_from_its_box_defaults_and_flags_win(tmp_path):
    from dspjax.agents.ppo import BOX_CONFIG, PPO_BOX, PPOConfig, PPOHParams
    from dspjax.cli import _train_setup, build_parser

    def setup(*flags):
        args = build_parser().parse_args(["train", "--seeds", "1", "--out", str(tmp_path / "r"), *flags])
        algo, config, base, sweep, seeds, members, out = _train_setup(args)
        return config, members[0].hparams

    config, box = setup("--env", "Pendulum-v1")
    assert box == PPO_BOX and BOX_CONFIG["num_steps"] != PPOConfig().num_steps
    assert {k: getattr(config, k) for k in BOX_CONFIG} == BOX_CONFIG
    config, discrete = setup("--env", "CartPole-v1")
    assert discrete == PPOHParams() and config == PPOConfig(env_id="CartPole-v1")
    config, given = setup("--env", "Pendulum-v1", "--lam", "0.001", "--num-steps", "64")
    assert config.num_steps == 64 and config.update_epochs == BOX_CONFIG["update_epochs"]
    assert float(given.dsp.lam) == pytest.approx(0.001)
    assert float(given.dsp.prune_start) == float(PPO_BOX.dsp.prune_start)
