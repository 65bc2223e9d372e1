"""Gymnasium environments stepped on the host, in worker processes: the host side of the bridge.

A ``HostEnvPool`` holds ``num_envs`` gymnasium environments split into contiguous chunks over
``num_workers`` processes (``0``: stepped in this process). ``reset(seeds)`` and ``step(actions)``
work on the whole batch with the semantics of dspjax's gymnax adapter: an episode that ends is
reset in the same step (its last observation is returned as ``final_obs``), and observations are
flattened float32. Workers are fresh interpreters running this file (``python -P host_pool.py FD``;
it imports neither JAX nor dspjax), talking over a socket pair: JAX is multithreaded, so forking it
is unsafe, and unlike ``multiprocessing``'s spawn this never re-runs the user's script. A worker
leaves when its socket closes, so none outlives the process that started it.

An exception in an environment stops the pool: every worker is closed and ``HostEnvError`` names
the environment id, the environment's index, the step and the original exception.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection

import numpy as np


class HostEnvError(RuntimeError):
    """A bridged gymnasium environment raised (or its worker died); the pool is closed."""


def make_gymnasium_env(env_id: str, env_config: dict | None = None, render_mode: str | None = None,
                       max_episode_steps: int | None = None):
    """``gymnasium.make(env_id, config=env_config)``, with highway-env's ids registered on demand,
    and a ``TimeLimit`` of ``max_episode_steps`` when the id has no limit of its own."""
    import gymnasium as gym
    if ":" not in env_id and env_id not in gym.registry:
        try:
            import highway_env  # noqa: F401  (registers highway-v0, merge-v1, ...)
        except ImportError:
            pass
    kwargs = {"config": env_config} if env_config else {}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if env.spec is not None and env.spec.max_episode_steps is None and max_episode_steps:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env


def _flat(obs) -> np.ndarray:
    return np.asarray(obs, np.float32).reshape(-1)


class _EnvFailure(Exception):
    def __init__(self, local_index: int, message: str):
        self.local_index, self.message = local_index, message


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _run(envs, command: str, data):
    """Runs ``command`` on a chunk of environments; raises ``_EnvFailure`` naming the env."""
    if command == "reset":
        out = []
        for i, (env, seed) in enumerate(zip(envs, data)):
            try:
                out.append(_flat(env.reset(seed=int(seed))[0]))
            except Exception as e:  # noqa: BLE001 - any env failure is reported, not swallowed
                raise _EnvFailure(i, _describe(e)) from None
        return np.stack(out)
    obs, reward, terminated, truncated, final_obs = [], [], [], [], []
    for i, (env, action) in enumerate(zip(envs, data)):
        try:
            o, r, term, trunc, _ = env.step(int(action))
            final_obs.append(_flat(o))
            if term or trunc:  # same-step auto-reset, as gymnax does
                o, _ = env.reset()
        except Exception as e:  # noqa: BLE001
            raise _EnvFailure(i, _describe(e)) from None
        obs.append(_flat(o))
        reward.append(r)
        terminated.append(term)
        truncated.append(trunc)
    return (np.stack(obs), np.asarray(reward, np.float32), np.asarray(terminated, bool),
            np.asarray(truncated, bool), np.stack(final_obs))


def _exit_code(process) -> int | None:
    try:
        return process.wait(1)
    except subprocess.TimeoutExpired:
        return None


def _worker(conn):
    try:
        env_id, env_config, max_episode_steps, count = conn.recv()
        envs = [make_gymnasium_env(env_id, env_config, None, max_episode_steps) for _ in range(count)]
    except Exception as e:  # noqa: BLE001
        conn.send(("error", (0, _describe(e))))
        return
    conn.send(("ok", None))
    while True:
        try:
            command, data = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):  # the parent is gone: leave
            break
        if command == "close":
            break
        try:
            reply = ("ok", _run(envs, command, data))
        except _EnvFailure as f:
            reply = ("error", (f.local_index, f.message))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):  # the parent is gone: leave quietly
            break
    for env in envs:
        env.close()


class HostEnvPool:
    """``num_envs`` copies of ``env_id`` over ``num_workers`` processes (0: in this process)."""

    def __init__(self, env_id: str, num_envs: int, env_config: dict | None = None,
                 num_workers: int = 0, max_episode_steps: int | None = None):
        self.env_id, self.num_envs = env_id, num_envs
        self.steps = 0
        self.closed = False
        self._local = None
        self._workers = []   # (process, connection, first env index, env count)
        if num_workers == 0:
            self._local = [make_gymnasium_env(env_id, env_config, None, max_episode_steps)
                           for _ in range(num_envs)]
            return
        first = 0
        environ = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        for count in np.diff(np.linspace(0, num_envs, min(num_workers, num_envs) + 1).astype(int)):
            ours, theirs = socket.socketpair()
            process = subprocess.Popen(
                [sys.executable, "-P", os.path.abspath(__file__), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=environ)
            theirs.close()
            conn = Connection(ours.detach())
            conn.send((env_id, env_config, max_episode_steps, int(count)))
            self._workers.append((process, conn, first, int(count)))
            first += int(count)
        self._gather("start")

    @property
    def processes(self):
        return [p for p, *_ in self._workers]

    def _chunks(self, values):
        return [values[first:first + count] for _, _, first, count in self._workers]

    def _gather(self, what: str):
        results = []
        for process, conn, first, _ in self._workers:
            try:
                status, payload = conn.recv()
            except (EOFError, OSError):
                status, payload = "error", (0, ("its worker process died "
                                               f"(exit code {_exit_code(process)})"))
            if status == "error":
                self._fail(first + payload[0], payload[1], what)
            results.append(payload)
        return results

    def _fail(self, index: int, message: str, what: str):
        self.close()
        raise HostEnvError(f"environment {self.env_id!r} (env {index} of {self.num_envs}) failed "
                           f"at {what}: {message}")

    def _call(self, command: str, values, what: str):
        if self.closed:
            raise HostEnvError(f"environment {self.env_id!r}: the pool is closed (an earlier "
                               "error or close_host_envs()); reset it to start again")
        if self._local is not None:
            try:
                return [_run(self._local, command, values)]
            except _EnvFailure as f:
                self._fail(f.local_index, f.message, what)
        for (_, conn, _, _), chunk in zip(self._workers, self._chunks(values)):
            conn.send((command, chunk))
        return self._gather(what)

    def reset(self, seeds) -> np.ndarray:
        """Seeds every environment (``seeds``: one integer each); returns the first observations."""
        self.steps = 0
        return np.concatenate(self._call("reset", np.asarray(seeds), "reset"))

    def step(self, actions):
        """Steps every environment once: ``(obs, reward, terminated, truncated, final_obs)``."""
        self.steps += 1
        parts = self._call("step", np.asarray(actions), f"step {self.steps} after reset")
        return tuple(np.concatenate(column) for column in zip(*parts))

    def close(self) -> None:
        """Closes the environments and ends every worker (terminated if it does not leave)."""
        if self.closed:
            return
        self.closed = True
        for env in self._local or ():
            env.close()
        for _, conn, _, _ in self._workers:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process, conn, _, _ in self._workers:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":  # a worker: python host_pool.py FD
    _worker(Connection(int(sys.argv[1])))
