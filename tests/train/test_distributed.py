"""A population over two processes (``jax.distributed`` on CPU, coordinator on localhost) trains
exactly like the same population in one process with as many devices: gymnax and a bridged
gymnasium environment, a member count the processes do not divide (padded), and a run whose
processes are all killed and resumed. Each process steps only its own members' environments.

"Exactly like one process with as many devices": each device runs the program for its share of
the members, and XLA's CPU code for a batch of 4 members is not bit for bit that for a batch of 8
(vectorised loops over the member axis), so one process with one device ends ~1e-8 away
(README, "Several processes and hosts"); with two devices it is the same program as two processes.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_cli_resume import COMPILE_CACHE, assert_same_run, wait_for_checkpoint  # noqa: E402

# 100 iterations in segments of 10, 8 members.
ARGS = ["train", "--steps", str(100 * 4 * 16), "--num-envs", "4", "--num-steps", "16", "--epochs", "1",
        "--minibatches", "2", "--hidden", "16,8", "--eval-episodes", "2", "--seeds", "8",
        "--segment-length", "10", "--no-progress"]
BRIDGED = ["--env", "gymnasium:CartPole-v1", "--env-workers", "1"]
ROOT = str(Path(__file__).resolve().parents[2])
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", JAX_COMPILATION_CACHE_DIR=COMPILE_CACHE,
           PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
TWO_DEVICES = dict(ENV, XLA_FLAGS="--xla_force_host_platform_device_count=2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(args, n=2):
    """``n`` processes of one distributed ``dspjax`` command, coordinator on a free local port."""
    port = free_port()
    return [subprocess.Popen([sys.executable, "-m", "dspjax", *args, "--coordinator",
                              f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id", str(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
            for i in range(n)]


def finish(processes):
    outs = [p.communicate(timeout=900) for p in processes]
    for p, (_, err) in zip(processes, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


def one_process(args, out):
    """The same population in one process with two devices."""
    done = subprocess.run([sys.executable, "-m", "dspjax", *args, "--out", str(out)],
                          capture_output=True, text=True, env=TWO_DEVICES, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return one_process(ARGS, tmp_path_factory.mktemp("one") / "run")


@pytest.mark.slow
def test_two_processes_train_exactly_like_one(reference, tmp_path):
    out = tmp_path / "two"
    (first, _), (second, _) = finish(start_processes(ARGS + ["--out", str(out)]))
    assert_same_run(reference, out)
    assert "run directory" in first and "run directory" not in second  # process 0 reports it


@pytest.mark.slow
def test_a_member_count_the_processes_do_not_divide_is_padded(tmp_path):
    args = [a if a != "8" else "3" for a in ARGS]  # 3 members: 4 run, one an inert copy
    out = tmp_path / "two"
    finish(start_processes(args + ["--out", str(out)]))
    assert_same_run(one_process(args, tmp_path / "one"), out)


@pytest.mark.slow
def test_a_bridged_environment_trains_exactly_like_one_process(tmp_path):
    out = tmp_path / "two"
    finish(start_processes(ARGS + BRIDGED + ["--out", str(out)]))
    assert_same_run(one_process(ARGS + BRIDGED, tmp_path / "one"), out)


@pytest.mark.slow
def test_both_processes_killed_then_resumed_end_exactly_as_uninterrupted(reference, tmp_path):
    out = tmp_path / "killed"
    processes = start_processes(ARGS + ["--out", str(out)])
    wait_for_checkpoint(processes[0], out)
    for p in processes:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert not (out / "summary.json").exists()
    resumed = finish(start_processes(["train", "--resume", str(out), "--no-progress"]))
    assert "going on from the checkpoint at iteration" in resumed[0][1]
    assert_same_run(reference, out)


STEPPED = textwrap.dedent("""
    import sys
    from dspjax.train.distributed import initialize, member_layout
    initialize(sys.argv[1], 2, int(sys.argv[2]))
    import jax, numpy as np
    from dspjax.envs.host_env import HostVecEnv, close_host_envs
    env = HostVecEnv("CartPole-v1", num_envs=3, num_workers=0)
    seen = []
    host_reset = env._host_reset
    object.__setattr__(env, "_host_reset", lambda seeds: seen.append(np.shape(seeds)) or host_reset(seeds))
    layout = member_layout(8, one_device_per_process=True)
    keys = layout.place(np.asarray(jax.vmap(jax.random.PRNGKey)(np.arange(8, dtype=np.uint32))))
    obs, _ = layout.compile(env.reset, (0,))(keys)
    obs = layout.to_host(obs)
    close_host_envs()
    print("seen", seen, "obs", obs.shape, float(np.abs(obs).sum()))
""")


@pytest.mark.slow
def test_each_process_steps_only_its_own_members_environments():
    port = free_port()
    processes = [subprocess.Popen([sys.executable, "-c", STEPPED, f"127.0.0.1:{port}", str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
                 for i in range(2)]
    outs = finish(processes)
    lines = [out.strip().splitlines()[-1] for out, _ in outs]
    # 8 members x 3 envs: each process's callback saw its own 4 members' seeds, once.
    assert all(line.startswith("seen [(4, 3)] obs (8, 3, 4)") for line in lines), lines
    assert lines[0] == lines[1]  # every process gets every member's observations
