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
the environment id, the environment's index, the step and the original exception. So does a worker
that dies (killed, crashed: noticed within ``POLL_SECONDS``, with its exit code or signal) or hangs
(no sign of life for ``timeout`` seconds, default ``$DSPJAX_ENV_TIMEOUT`` or 60 s; a worker tells
its pool it is alive after each environment it steps, so the timeout bounds one environment's
step, reset or construction, not a whole chunk's). A pool never lets a broken pipe out.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import NamedTuple

import numpy as np

TIMEOUT_VARIABLE = "DSPJAX_ENV_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds: highway-v0 steps take ~0.5 s, a construction a few seconds
POLL_SECONDS = 0.2      # how often a pool waiting for replies checks that its workers live
CLOSE_GRACE = 5.0       # seconds workers get to leave on their own before they are killed


class HostEnvError(RuntimeError):
    """A bridged gymnasium environment raised, or its worker died or hung; the pool is closed."""


def env_timeout(timeout: float | None = None) -> float:
    """``timeout``, else ``$DSPJAX_ENV_TIMEOUT``, else ``DEFAULT_TIMEOUT`` (seconds; ``inf``: no
    limit); ValueError naming the source unless it is a number > 0."""
    source, shown = "timeout", repr(timeout)
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        source, shown = TIMEOUT_VARIABLE, repr(text)
        try:
            timeout = float(text)
        except ValueError:
            timeout = float("nan")
    if not float(timeout) > 0:
        raise ValueError(f"{source}={shown}: must be a number of seconds > 0 (inf: no limit)")
    return float(timeout)


def register_env_id(env_id: str) -> None:
    """Registers highway-env's ids (highway-v0, merge-v1, ...) when ``env_id`` is not yet known
    and has no ``module:`` prefix (gymnasium imports that module itself)."""
    import gymnasium as gym
    if ":" not in env_id and env_id not in gym.registry:
        try:
            import highway_env  # noqa: F401
        except ImportError:
            pass


def make_gymnasium_env(env_id: str, env_config: dict | None = None, render_mode: str | None = None,
                       max_episode_steps: int | None = None):
    """``gymnasium.make(env_id, config=env_config)``, with highway-env's ids registered on demand,
    and a ``TimeLimit`` of ``max_episode_steps`` when the id has no limit of its own."""
    import gymnasium as gym
    register_env_id(env_id)
    kwargs = {"config": env_config} if env_config else {}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if env.spec is not None and env.spec.max_episode_steps is None and max_episode_steps:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env


def _flat(obs) -> np.ndarray:
    return np.asarray(obs, np.float32).reshape(-1)


def env_action(env, action):
    """The action as ``env`` takes it: an int for a Discrete space, an array of the Box's shape
    and dtype for a Box."""
    import gymnasium as gym
    if isinstance(env.action_space, gym.spaces.Discrete):
        return int(action)
    return np.asarray(action, env.action_space.dtype).reshape(env.action_space.shape)


class _EnvFailure(Exception):
    def __init__(self, local_index: int, message: str):
        self.local_index, self.message = local_index, message


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _no_beat() -> None:
    pass


def _run(envs, command: str, data, beat=_no_beat):
    """Runs ``command`` on a chunk of environments, calling ``beat()`` after each; raises
    ``_EnvFailure`` naming the env."""
    if command == "reset":
        out = []
        for i, (env, seed) in enumerate(zip(envs, data)):
            try:
                out.append(_flat(env.reset(seed=int(seed))[0]))
            except Exception as e:  # noqa: BLE001 - any env failure is reported, not swallowed
                raise _EnvFailure(i, _describe(e)) from None
            beat()
        return np.stack(out)
    obs, reward, terminated, truncated, final_obs = [], [], [], [], []
    for i, (env, action) in enumerate(zip(envs, data)):
        try:
            o, r, term, trunc, _ = env.step(env_action(env, action))
            final_obs.append(_flat(o))
            if term or trunc:  # same-step auto-reset, as gymnax does
                o, _ = env.reset()
        except Exception as e:  # noqa: BLE001
            raise _EnvFailure(i, _describe(e)) from None
        obs.append(_flat(o))
        reward.append(r)
        terminated.append(term)
        truncated.append(trunc)
        beat()
    return (np.stack(obs), np.asarray(reward, np.float32), np.asarray(terminated, bool),
            np.asarray(truncated, bool), np.stack(final_obs))


class _Beat:
    """A worker's sign of life: ``("alive", None)`` to its pool, at most every ``interval``
    seconds, called after each environment it makes, resets or steps."""

    def __init__(self, conn, interval: float):
        self.conn, self.interval = conn, interval
        self.restart()

    def restart(self) -> None:
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= self.interval:
            self.conn.send(("alive", None))
            self.restart()


def _worker(conn):
    envs = []
    try:
        env_id, env_config, max_episode_steps, count, timeout = conn.recv()
        beat = _Beat(conn, timeout / 4)
        try:
            for _ in range(count):
                envs.append(make_gymnasium_env(env_id, env_config, None, max_episode_steps))
                beat()
        except Exception as e:  # noqa: BLE001
            conn.send(("error", (len(envs), _describe(e))))
            return
        reply = ("ok", None)
        while True:
            conn.send(reply)
            command, data = conn.recv()
            if command == "close":
                break
            beat.restart()
            try:
                reply = ("ok", _run(envs, command, data, beat))
            except _EnvFailure as f:
                reply = ("error", (f.local_index, f.message))
    except (EOFError, OSError, KeyboardInterrupt):  # the parent is gone: leave quietly
        pass
    finally:
        for env in envs:
            env.close()


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "closed its connection while still running; it was killed"
    if returncode < 0:
        try:
            name = f", {signal.Signals(-returncode).name}"
        except ValueError:
            name = ""
        return f"died (killed by signal {-returncode}{name})"
    return f"died (exit code {returncode})"


class _Worker(NamedTuple):
    process: subprocess.Popen
    conn: Connection
    first: int   # index of its first environment in the pool
    count: int   # environments it steps


class HostEnvPool:
    """``num_envs`` copies of ``env_id`` over ``num_workers`` processes (0: in this process).

    ``timeout``: seconds a worker may go without a sign of life while the pool waits for it
    (None: ``$DSPJAX_ENV_TIMEOUT``, else 60; see ``env_timeout``); starting the workers (imports,
    construction) gets at least ``DEFAULT_TIMEOUT``. Environments stepped in this process have no
    timeout.
    """

    def __init__(self, env_id: str, num_envs: int, env_config: dict | None = None,
                 num_workers: int = 0, max_episode_steps: int | None = None,
                 timeout: float | None = None):
        self.env_id, self.num_envs = env_id, num_envs
        self.timeout = env_timeout(timeout)
        self.steps = 0
        self.closed = False
        self._last_call = "start"
        self._local = None
        self._workers: list[_Worker] = []
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
            self._workers.append(_Worker(process, Connection(ours.detach()), first, int(count)))
            first += int(count)
        for worker in self._workers:
            self._send(worker, (env_id, env_config, max_episode_steps, worker.count, self.timeout),
                       "start")
        self._gather("start", max(self.timeout, DEFAULT_TIMEOUT))

    @property
    def processes(self):
        return [w.process for w in self._workers]

    def _chunks(self, values):
        return [values[w.first:w.first + w.count] for w in self._workers]

    def _send(self, worker: _Worker, message, what: str) -> None:
        try:
            worker.conn.send(message)
        except OSError:  # BrokenPipeError, ConnectionResetError: it died
            self._lost(worker, f"at {what}")

    def _gather(self, what: str, timeout: float | None = None):
        """Every worker's reply, in order. Waits ``POLL_SECONDS`` at a time, checking after a
        quiet wait (and at least that often) that each worker still runs and has shown a sign of
        life within ``timeout``. An environment's error is raised once the workers before its own
        have replied, so the first failing environment is the one named, as if the pool were
        stepped in order."""
        timeout = self.timeout if timeout is None else timeout
        replies = [None] * len(self._workers)
        heard = [time.monotonic()] * len(self._workers)
        poller, by_fd = select.poll(), {}
        for i, worker in enumerate(self._workers):
            by_fd[worker.conn.fileno()] = i
            poller.register(worker.conn.fileno(), select.POLLIN)
        next_check = time.monotonic() + POLL_SECONDS
        while True:
            for worker, reply in zip(self._workers, replies):
                if reply is None:
                    break
                if reply[0] == "error":
                    self._fail(worker.first + reply[1][0], reply[1][1], what)
            else:
                return [payload for _, payload in replies]
            events = poller.poll(POLL_SECONDS * 1000)
            for fd, _ in events:
                i = by_fd[fd]
                try:
                    reply = self._workers[i].conn.recv()
                except (EOFError, OSError):
                    self._lost(self._workers[i], f"at {what}")
                heard[i] = time.monotonic()
                if reply[0] != "alive":
                    replies[i] = reply
                    poller.unregister(fd)
            now = time.monotonic()
            if events and now < next_check:
                continue
            next_check = now + POLL_SECONDS
            for i, worker in enumerate(self._workers):
                if replies[i] is None and worker.process.poll() is not None and not worker.conn.poll():
                    self._lost(worker, f"at {what}")
                if replies[i] is None and now - heard[i] > timeout:
                    self._fail_worker(worker, f"at {what}", (
                        f"its worker process (pid {worker.process.pid}) showed no sign of life for "
                        f"{timeout:g} s (hung? the timeout is {TIMEOUT_VARIABLE}=<seconds>); it was "
                        "killed"), hung=True)

    def _lost(self, worker: _Worker, when: str):
        """Reports a worker whose connection broke: dead (its exit code or signal) or, if it
        still runs a moment later, killed."""
        try:
            returncode = worker.process.wait(1)
        except subprocess.TimeoutExpired:
            returncode = None
        self._fail_worker(worker, when, f"its worker process (pid {worker.process.pid}) "
                          f"{_death(returncode)}", hung=returncode is None)

    def _fail_worker(self, worker: _Worker, when: str, message: str, hung: bool = False):
        self.close(kill=(worker,) if hung else ())
        envs = (f"env {worker.first}" if worker.count == 1
                else f"envs {worker.first}-{worker.first + worker.count - 1}")
        raise HostEnvError(f"environment {self.env_id!r} ({envs} of {self.num_envs}) failed "
                           f"{when}: {message}")

    def _fail(self, index: int, message: str, what: str):
        self.close()
        raise HostEnvError(f"environment {self.env_id!r} (env {index} of {self.num_envs}) failed "
                           f"at {what}: {message}")

    def check_workers(self) -> None:
        """Raises ``HostEnvError`` if a worker has died since the last call (the pool is idle:
        e.g. the evaluation environments while training steps others)."""
        if self.closed:
            return
        for worker in self._workers:
            if worker.process.poll() is not None:
                self._lost(worker, f"while idle, after {self._last_call}")

    def _call(self, command: str, values, what: str):
        self._last_call = what
        if self.closed:
            raise HostEnvError(f"environment {self.env_id!r}: the pool is closed (an earlier "
                               "error or close_host_envs()); reset it to start again")
        if self._local is not None:
            try:
                return [_run(self._local, command, values)]
            except _EnvFailure as f:
                self._fail(f.local_index, f.message, what)
        for worker, chunk in zip(self._workers, self._chunks(values)):
            self._send(worker, (command, chunk), what)
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

    def close(self, kill=()) -> None:
        """Closes the environments and ends every worker: those in ``kill`` at once, the others
        when they have left on their own or ``CLOSE_GRACE`` seconds have passed."""
        if self.closed:
            return
        self.closed = True
        for env in self._local or ():
            env.close()
        for worker in self._workers:
            if worker in kill:
                worker.process.kill()
                continue
            try:
                worker.conn.send(("close", None))
            except OSError:
                pass
        deadline = time.monotonic() + CLOSE_GRACE
        for worker in self._workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":  # a worker: python host_pool.py FD
    _worker(Connection(int(sys.argv[1])))
