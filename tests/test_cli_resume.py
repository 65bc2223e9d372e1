"""``dspjax train`` survives: a real process killed with SIGKILL and resumed ends with exactly the
parameters, masks and metrics of an uninterrupted run; SIGINT stops it after a checkpoint with no
bridged-env worker left, and it resumes (SIGTERM's 143 and a second signal: tests/train/
test_stopping.py); bad ``--out`` and ``--resume`` input exits 2 before compiling."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from dspjax.cli import main
from dspjax.train.run_dir import load_run

# 200 iterations in segments of 10: long enough to be stopped in the middle.
ARGS = ["train", "--steps", str(200 * 4 * 16), "--num-envs", "4", "--num-steps", "16", "--epochs", "1",
        "--minibatches", "2", "--hidden", "16,8", "--eval-episodes", "2", "--seeds", "2",
        "--segment-length", "10", "--no-progress"]
# The processes of these tests compile the same programs again and again: JAX's persistent
# compilation cache (one per test session) lets every process after the first load them.
COMPILE_CACHE = tempfile.mkdtemp(prefix="dspjax-tests-compile-cache-")
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", JAX_COMPILATION_CACHE_DIR=COMPILE_CACHE)


def start(args, out, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "dspjax", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            **kwargs)


def resume(run_dir):
    return subprocess.run([sys.executable, "-m", "dspjax", "train", "--resume", str(run_dir),
                           "--no-progress"], capture_output=True, text=True, env=ENV, timeout=600)


def wait_for_checkpoint(process, run_dir, timeout=300):
    """Waits until the run has saved a checkpoint and has not finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [p for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
        if steps:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no checkpoint was written")


def children(pid):
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_same_run(a, b):
    cfg_a, tree_a = load_run(a)
    cfg_b, tree_b = load_run(b)
    import jax
    leaves_a, leaves_b = jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    returns = lambda d: [m["eval_returns"] for m in json.loads((d / "summary.json").read_text())["members"]]
    assert returns(a) == returns(b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "uninterrupted"
    process = start(ARGS, out)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out


@pytest.mark.slow
def test_sigkill_then_resume_ends_exactly_as_an_uninterrupted_run(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    process = start(ARGS, out)
    wait_for_checkpoint(process, out)
    process.kill()
    process.communicate()
    assert not (out / "summary.json").exists() and (out / "config.json").is_file()
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert "going on from the checkpoint at iteration" in done.stderr
    assert_same_run(uninterrupted, out)


@pytest.mark.slow
def test_sigint_with_a_bridged_env_leaves_no_worker_and_resumes(tmp_path):
    out = tmp_path / "bridged"
    args = ARGS + ["--env", "gymnasium:CartPole-v1", "--env-workers", "2"]
    process = start(args, out)
    wait_for_checkpoint(process, out)
    workers = children(process.pid)
    assert len(workers) == 2  # the pool's worker processes
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "stopped by SIGINT" in err and f"dspjax train --resume {out}" in err
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
    done = resume(out)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["members"]) == 2


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        sys.exit(main(argv))
    err = capsys.readouterr().err.strip()
    return exit_.value.code, err


@pytest.mark.parametrize("out", ["/proc/dspjax-run", "/dev/null/run"])
def test_an_unwritable_out_exits_2_before_compiling(out, capsys):
    code, err = run_main(["train", "--out", out], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"dspjax: error: out='{out}': cannot be written")


def test_bad_resume_input_exits_2_and_changes_nothing(uninterrupted, tmp_path, capsys):
    code, err = run_main(["train", "--resume", str(tmp_path / "none")], capsys)
    assert code == 2 and "no config.json" in err
    code, err = run_main(["train", "--resume", str(uninterrupted)], capsys)
    assert code == 2 and "already finished" in err
    code, err = run_main(["train", "--resume", str(uninterrupted), "--lam", "0.1"], capsys)
    assert code == 2 and "--lam cannot be changed on resume" in err

    copy = tmp_path / "other-version"
    copy.mkdir()
    cfg = json.loads((uninterrupted / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(dict(cfg, dspjax_version="0.0.1")))
    code, err = run_main(["train", "--resume", str(copy)], capsys)
    assert code == 2 and "written by dspjax 0.0.1" in err

    edited = tmp_path / "edited"
    edited.mkdir()
    cfg["config"]["hidden_sizes"] = [32, 8]
    (edited / "config.json").write_text(json.dumps(cfg))
    before = (edited / "config.json").read_bytes()
    code, err = run_main(["train", "--resume", str(edited)], capsys)
    assert code == 2 and "does not match" in err
    assert (edited / "config.json").read_bytes() == before
    assert sorted(p.name for p in edited.iterdir()) == ["config.json"]


def test_an_existing_run_points_to_resume(uninterrupted, capsys):
    code, err = run_main(["train", "--out", str(uninterrupted)], capsys)
    assert code == 2 and f"dspjax train --resume {uninterrupted}" in err
