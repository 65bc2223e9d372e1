"""The pool's workers: one that dies (killed between steps or during one, even where another
process keeps its socket open) or hangs gives a ``HostEnvError`` naming the environment, its
worker's envs, the step and the exit signal or the timeout, never a broken pipe, also when its
pool is idle; no process is left behind; a slow worker that shows signs of life is not hung."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from test_host_env import bridge_rollout, child_pids

from dspjax.envs import HostEnvError, HostVecEnv, close_host_envs, host_env, make_vec_env, take_host_error
from dspjax.envs.host_pool import HostEnvPool, env_timeout
from dspjax.hparams import ConfigError

HERE = Path(__file__).parent
STALLING = "stalling_env:Stalling-v0"
LONG = 600.0  # a timeout no test waits for: a fast failure is the liveness check's doing


@pytest.fixture(autouse=True)
def importable_test_envs():
    """Lets gymnasium import the test envs here and in workers; checks no process is left."""
    sys.path.insert(0, str(HERE))
    before = set(child_pids())
    yield
    sys.path.remove(str(HERE))
    close_host_envs()
    assert set(child_pids()) <= before


def all_ended(pool) -> bool:
    return pool.closed and all(p.poll() is not None for p in pool.processes)


def kill_when_marked(marker_dir: Path, pids: list):
    """Starts a thread that SIGKILLs the worker that writes a marker (its pid as file name) into
    ``marker_dir``, and records in ``pids`` the pid the marker holds (a forked child), if any."""
    def run():
        deadline = time.monotonic() + 120  # a bound on waiting for the marker, not on the pool
        while time.monotonic() < deadline:
            for marker in marker_dir.iterdir():
                pids.append(marker.read_text())
                os.kill(int(marker.name), signal.SIGKILL)
                return
            time.sleep(0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_between_steps_gives_an_error_naming_its_envs_and_signal():
    pool = HostEnvPool("CartPole-v1", 4, None, num_workers=2, timeout=LONG)
    pool.reset([0, 1, 2, 3])
    pool.step([0, 1, 0, 1])
    victim = pool.processes[1]
    victim.kill()
    victim.wait()
    with pytest.raises(HostEnvError, match=r"'CartPole-v1' \(envs 2-3 of 4\) failed at step 2 after "
                                           r"reset: its worker process \(pid \d+\) died \(killed by "
                                           r"signal 9, SIGKILL\)"):
        pool.step([0, 1, 0, 1])
    assert all_ended(pool)
    with pytest.raises(HostEnvError, match="the pool is closed"):
        pool.step([0, 1, 0, 1])


@pytest.mark.parametrize("hold_socket", [False, True], ids=["socket-closes", "socket-held-open"])
def test_a_worker_killed_during_a_step_is_noticed_without_waiting_for_the_timeout(tmp_path, hold_socket):
    # With the socket held open by a forked child, only the worker's exit code tells the pool.
    config = {"at_step": 2, "in_env_with_seed": 13, "marker_dir": str(tmp_path),
              "hold_socket": hold_socket, "seconds": 120}
    pool = HostEnvPool(STALLING, 4, config, num_workers=2, timeout=LONG)
    pool.reset([10, 11, 12, 13])
    pool.step([0, 0, 0, 0])
    held = []
    killer = kill_when_marked(tmp_path, held)
    try:
        with pytest.raises(HostEnvError, match=r"Stalling-v0' \(envs 2-3 of 4\) failed at step 2 "
                                               r"after reset: .*died \(killed by signal 9"):
            pool.step([0, 0, 0, 0])
    finally:
        killer.join()
        if held and held[0]:
            os.kill(int(held[0]), signal.SIGKILL)  # the child that held the socket
    assert all_ended(pool)
    assert bool(held[0]) == hold_socket


def test_a_hung_worker_is_killed_after_the_timeout_with_an_error_saying_so():
    config = {"at_step": 2, "in_env_with_seed": 11}
    pool = HostEnvPool(STALLING, 4, config, num_workers=2, timeout=1)
    pool.reset([10, 11, 12, 13])
    pool.step([0, 0, 0, 0])
    with pytest.raises(HostEnvError, match=r"\(envs 0-1 of 4\) failed at step 2 after reset: its "
                                           r"worker process \(pid \d+\) showed no sign of life for 1 s"
                                           r".*DSPJAX_ENV_TIMEOUT.*it was killed"):
        pool.step([0, 0, 0, 0])
    assert all_ended(pool)


def test_a_slow_worker_that_shows_signs_of_life_is_not_hung():
    # 6 envs of 0.5 s in one worker: 3 s per step, longer than the 2 s timeout, but the worker
    # tells its pool it is alive after each env: the timeout bounds one env, not the chunk.
    with HostEnvPool(STALLING, 6, {"at_step": 0, "step_seconds": 0.5}, num_workers=1,
                     timeout=2) as pool:
        pool.reset(range(6))
        obs, *_ = pool.step([0] * 6)
    np.testing.assert_allclose(obs, 0.01)


def test_a_worker_that_dies_in_a_jitted_program_gives_its_error_to_take_host_error(monkeypatch):
    monkeypatch.setenv("DSPJAX_ENV_TIMEOUT", str(LONG))
    env = make_vec_env(STALLING, 4, json.dumps({"at_step": 3, "then": "die"}), num_workers=2)
    with pytest.raises(Exception, match=r"Stalling-v0.*failed at step 3 after reset"):
        bridge_rollout(env, jax.random.PRNGKey(0), np.zeros((10, 4), np.int32))
    error = take_host_error()
    assert isinstance(error, HostEnvError)
    assert "died (killed by signal 9, SIGKILL)" in str(error)
    assert all_ended(env._slot.pool)


def test_the_timeout_comes_from_the_argument_the_variable_or_the_default(monkeypatch):
    monkeypatch.delenv("DSPJAX_ENV_TIMEOUT", raising=False)
    assert env_timeout() == 60
    assert env_timeout(2.5) == 2.5
    monkeypatch.setenv("DSPJAX_ENV_TIMEOUT", "120")
    assert env_timeout() == 120 and env_timeout(3) == 3
    assert HostVecEnv(STALLING, 1)._timeout == 120
    monkeypatch.setenv("DSPJAX_ENV_TIMEOUT", "inf")
    assert env_timeout() == float("inf")
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv("DSPJAX_ENV_TIMEOUT", bad)
        with pytest.raises(ConfigError, match=f"DSPJAX_ENV_TIMEOUT='{bad}': must be a number of seconds > 0"):
            make_vec_env(STALLING, 1)
    with pytest.raises(ConfigError, match=r"timeout=0: must be a number of seconds > 0"):
        HostVecEnv(STALLING, 1, timeout=0)


def test_a_worker_of_an_idle_pool_that_dies_is_reported_at_another_pools_next_call(monkeypatch):
    # e.g. the evaluation envs' pool, idle while the training envs step: not after the training
    monkeypatch.setattr(host_env, "IDLE_CHECK_SECONDS", 0.0)
    training = make_vec_env("gymnasium:CartPole-v1", 2, num_workers=1)
    evaluation = make_vec_env("gymnasium:CartPole-v1", 3, num_workers=1)
    bridge_rollout(evaluation, jax.random.PRNGKey(0), np.zeros((4, 3), np.int32))
    victim = evaluation._slot.pool.processes[0]
    victim.kill()
    victim.wait()
    with pytest.raises(Exception, match=r"CartPole-v1' \(envs 0-2 of 3\) failed while idle"):
        bridge_rollout(training, jax.random.PRNGKey(0), np.zeros((4, 2), np.int32))
    error = take_host_error()
    assert isinstance(error, HostEnvError)
    assert str(error).endswith(f"failed while idle, after step 4 after reset: its worker process "
                               f"(pid {victim.pid}) died (killed by signal 9, SIGKILL)")
    assert all_ended(evaluation._slot.pool)
