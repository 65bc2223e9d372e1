"""The ``dspjax`` command: bad input exits 2 with one line before anything compiles; a small
train, report and eval work end to end."""

import json
import subprocess
import sys

import pytest

from dspjax.cli import main

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
    (["train", "--lr", "inf"], "lr=inf"),
    (["train", "--steps", "ten"], "--steps"),
    (["eval", "/no/such/run"], "no config.json"),
    (["report", "/no/such/run"], "needs summary.json"),
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
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dspjax: error: lam=-0.5: must be a number in [0, inf)"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *SMALL, "--seeds", "2", "--sweep", "c_final=0.5,0.9", "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_directory_and_prints_the_table(run_dir, capsys):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "summary.json", "checkpoint", "return_curves.png",
            "alive_neurons.png", "return_vs_weights_removed.png"} <= names
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["members"]) == 4
    assert {m["grid_point"]["c_final"] for m in summary["members"]} == {0.5, 0.9}
    assert summary["members"][0]["grid_point"]["method"] == "dsp"


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


def test_eval_plays_the_masked_and_the_compact_policy(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 4
    for row in rows:
        masked, compact_ = float(row[2]), float(row[3])
        assert masked == compact_  # same greedy policy, physically smaller
