"""``env_config``: the JSON object passed to a bridged gymnasium environment as ``config``.

``parse_env_config`` reads it (inline or from a ``.json`` file), ``merged_config`` puts it over
dspjax's defaults for the id, ``override_env_config`` puts one over another (``dspjax eval
--env-config`` over a run's), and ``check_env_config`` refuses what the environment would ignore
or reject, before anything is made: a top-level key that highway-env's ``default_config()`` lacks
(highway-env would silently keep its default), or any config for an environment whose constructor
takes none (LunarLander-v3, CartPole-v1). Nested values (``"observation": {...}``) are left to the
environment.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from pathlib import Path

from dspjax.envs.host_pool import register_env_id
from dspjax.hparams import ConfigError

# Defaults under the user's env_config: dspjax's agents need discrete actions, and intersection-v1
# defaults to continuous ones, so it gets intersection-v0's discrete action space.
DEFAULT_ENV_CONFIGS = {
    "intersection-v1": {"action": {"type": "DiscreteMetaAction", "longitudinal": True,
                                   "lateral": False, "target_speeds": [0, 4.5, 9]}},
}


def parse_env_config(text: str) -> dict:
    """A JSON object, given inline or as the path of a ``.json`` file; ConfigError otherwise."""
    text = (text or "").strip()
    if not text:
        return {}
    if text[0] not in "{[":
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"env_config={text!r}: neither a JSON object nor a JSON file")
        text = path.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"env_config: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"env_config: must be a JSON object, got {type(value).__name__}")
    return value


def merged_config(env_id: str, env_config: str) -> dict:
    """dspjax's defaults for ``env_id`` with ``env_config``'s top-level keys over them."""
    merged = json.loads(json.dumps(DEFAULT_ENV_CONFIGS.get(env_id, {})))
    merged.update(parse_env_config(env_config))
    return merged


def override_env_config(base: str, override: str) -> str:
    """JSON text of ``base``'s config with ``override``'s top-level keys put over it (a nested
    value such as ``"observation"`` is replaced whole, not merged)."""
    merged = parse_env_config(base)
    merged.update(parse_env_config(override))
    return json.dumps(merged) if merged else ""


def env_creator(env_id: str):
    """The class or function ``gymnasium.make(env_id)`` calls, or None where the id is unknown
    (``make`` then says so)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator
    try:
        register_env_id(env_id)
        module, _, name = env_id.rpartition(":")
        if module:
            importlib.import_module(module)
        spec = gym.spec(name)
        return spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
    except Exception:  # noqa: BLE001 - an unknown id or module: left to gymnasium.make's error
        return None


def _takes_config(creator) -> bool:
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the environment decide
        return True
    return any(p.name == "config" or p.kind is p.VAR_KEYWORD for p in parameters)


def check_env_config(env_id: str, config: dict) -> None:
    """ConfigError unless ``env_id`` takes every top-level key of ``config``: the keys of its
    ``default_config()`` (highway-env), any key where it has a ``config`` argument but no
    ``default_config``, none where its constructor has no ``config`` argument."""
    if not config:
        return
    creator = env_creator(env_id)
    if creator is None:
        return
    default_config = getattr(creator, "default_config", None)
    if callable(default_config):
        valid = sorted(default_config())
        for key in config:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"env_config: unknown key {key!r} for {env_id}{hint}; valid keys: "
                                  + ", ".join(valid))
    elif not _takes_config(creator):
        name = getattr(creator, "__name__", str(creator))
        raise ConfigError(f"env_config: {env_id} takes no config ({name} has no config argument; "
                          f"got keys {', '.join(map(repr, config))}); env_config is for "
                          "environments that take one, such as highway-env's")
