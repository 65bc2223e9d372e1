"""A video of a run's policies: the dense baseline and the compact pruned network side by side.

``record_video(run_dir, path, seed)`` plays one episode per panel on the environment's
``rgb_array`` rendering (gymnasium's; the gymnax ids that gymnasium also has, CartPole-v1,
Acrobot-v1 and MountainCar-v0, are rendered by gymnasium's version, same dynamics): left the best
dense member (``method=dense``, or nothing pruned), right the best pruned member run through its
*compact* network (METHOD.md §6), both from the same environment seed. Each panel is captioned
with its method, episode return and parameter count. GIF through Pillow, MP4 through imageio.
Rendering is headless: SDL's ``offscreen`` video driver (see ``headless_sdl``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from dspjax.envs import gymnax_env_ids, make_vec_env, with_env_config, with_env_id
from dspjax.envs.brax_env import BRAX_PREFIX
from dspjax.envs.env_config import merged_config
from dspjax.envs.highway_vec_env import JAX_PREFIX
from dspjax.envs.host_env import GYMNASIUM_PREFIX
from dspjax.envs.host_pool import env_action, make_gymnasium_env
from dspjax.hparams import ConfigError
from dspjax.pruning import compact, dense_param_count, param_masks
from dspjax.train.algos import action_space_of
from dspjax.train.run_dir import load_run, member_network, networks_of, run_algo

VIDEO_SUFFIXES = (".gif", ".mp4")
# gymnax ids whose gymnasium namesake has the same dynamics and observations, and a renderer.
GYMNASIUM_TWINS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "MountainCarContinuous-v0")
CAPTION_HEIGHT = 46


def merged_env_config(env_id: str, env_config: str = "") -> dict:
    """The config dict a bridged gymnasium env is made with: dspjax's defaults for the id (e.g.
    discrete actions for intersection-v1) under the user's ``env_config`` (JSON text or file)."""
    return merged_config(env_id.removeprefix(GYMNASIUM_PREFIX), env_config)


def check_video_path(path) -> Path:
    """``path`` as a Path when its suffix is a video format dspjax writes; ConfigError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"video={str(path)!r}: the file name must end in "
                          f"{' or '.join(VIDEO_SUFFIXES)}")
    if path.is_dir():
        raise ConfigError(f"video={str(path)!r}: is a directory; give a file name")
    return path


def render_env_id(env_id: str) -> str:
    """The gymnasium id that renders ``env_id``; ConfigError for a gymnax id without a twin."""
    if env_id in gymnax_env_ids():
        if env_id not in GYMNASIUM_TWINS:
            raise ConfigError(f"env={env_id!r}: a gymnax environment without a renderer; --video "
                              f"works for gymnasium ids and for {', '.join(GYMNASIUM_TWINS)}")
        return env_id
    if env_id.startswith(JAX_PREFIX):  # dspjax's port of highway-env: filmed in highway-env itself
        return env_id.removeprefix(JAX_PREFIX)
    if env_id.startswith(BRAX_PREFIX):
        raise ConfigError(f"env={env_id!r}: brax environments have no renderer here; --video works "
                          "for gymnasium ids (Hopper-v5, Walker2d-v5, ...) and the gymnax ids "
                          + ", ".join(GYMNASIUM_TWINS))
    return env_id.removeprefix(GYMNASIUM_PREFIX)


def headless_sdl() -> None:
    """Lets pygame (gymnasium's and highway-env's renderers) draw without a display or sound
    card: SDL's ``offscreen`` video driver where none or ``dummy`` is set (highway-env draws
    nothing at all under ``dummy``), and the ``dummy`` audio driver unless one is set."""
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if os.environ.get("SDL_VIDEODRIVER", "dummy") in ("", "dummy"):
        os.environ["SDL_VIDEODRIVER"] = "offscreen"


def make_render_env(config):
    """One gymnasium env of ``config.env_id`` rendering ``rgb_array`` frames, made like the
    bridge makes it (same config and episode step limit), headless (``headless_sdl``)."""
    headless_sdl()
    env_id = render_env_id(config.env_id)
    env_config = {} if config.env_id in gymnax_env_ids() else merged_env_config(env_id,
                                                                                 config.env_config)
    limit = make_vec_env(config.env_id, 1, config.env_config, 0).max_episode_steps
    return make_gymnasium_env(env_id, env_config, render_mode="rgb_array", max_episode_steps=limit)


def play_episode(env, policy, seed: int):
    """``(frames, return)`` of one episode from ``env.reset(seed=seed)``; ``policy(obs) -> action``
    (an integer, or a box's vector) gets the flattened float32 observation."""
    obs, _ = env.reset(seed=int(seed))
    frames, total, done = [np.asarray(env.render())], 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(
            env_action(env, np.asarray(policy(np.asarray(obs, np.float32).reshape(-1)))))
        total += float(reward)
        done = terminated or truncated
        frames.append(np.asarray(env.render()))
    return frames, total


@dataclasses.dataclass
class Panel:
    """One side of the video: the member shown, the network it plays and its caption."""
    member: dict            # the member's record in summary.json
    params: tuple           # the network played (dense, or compact)
    kind: str               # "dense" or "pruned"
    parameters: int         # parameters the network keeps
    dense_parameters: int


def pick_members(summary: dict) -> dict[str, dict]:
    """The best (highest final return, not diverged first) member of each kind present:
    ``"dense"`` (grid point ``method=dense``, or nothing of its policy network pruned) and
    ``"pruned"`` (every other member)."""
    policy = networks_of(summary)[0]
    best = {}
    for record in summary["members"]:
        nothing_pruned = record[policy]["weights_removed"] == 0
        kind = "dense" if record["grid_point"].get("method") == "dense" or nothing_pruned \
            else "pruned"
        score = (not record["diverged"], record["final_return"])
        if kind not in best or score > best[kind][0]:
            best[kind] = (score, record)
    return {kind: record for kind, (_, record) in sorted(best.items())}


def _panels(run_dir) -> tuple[object, object, list[Panel]]:
    cfg, tree = load_run(run_dir)
    summary_path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"run_dir={str(run_dir)!r}: summary.json cannot be read ({e})") from None
    algo, config = run_algo(cfg)
    net = networks_of(summary)[0]
    panels = []
    for kind, record in pick_members(summary).items():
        params, neuron_masks, weight_masks = member_network(tree, net, record["member"])
        kept = sum(int(np.sum(m["kernel"]) + np.sum(m["bias"]))
                   for m in param_masks(params, neuron_masks, weight_masks))
        panels.append(Panel(record, compact(params, neuron_masks), kind, kept,
                            dense_param_count(params)))
    return algo, config, panels


def caption_lines(panel: Panel, episode_return: float) -> list[str]:
    record = panel.member
    method = record["grid_point"].get("method", panel.kind)
    sizes = [panel.params[0]["kernel"].shape[0]] + [layer["bias"].shape[0] for layer in panel.params]
    first = f"{method} (seed {record['seed']}): return {episode_return:.1f}"
    if panel.kind == "dense":
        return [first, f"dense {'x'.join(map(str, sizes))}: {panel.parameters:,} parameters"]
    kept = f"{panel.parameters:,} of {panel.dense_parameters:,} parameters"
    return [first, f"compact {'x'.join(map(str, sizes))}: {kept}"]


def captioned(frames, lines) -> list[np.ndarray]:
    """``frames`` with a white band above each holding ``lines`` of text (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.load_default(size=16)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    width = frames[0].shape[1]
    band = Image.new("RGB", (width, CAPTION_HEIGHT), (235, 235, 235))
    draw = ImageDraw.Draw(band)
    for i, text in enumerate(lines):
        draw.text((8, 4 + 20 * i), text, fill="black", font=font)
    band = np.asarray(band)
    return [np.concatenate([band, frame[..., :3].astype(np.uint8)], axis=0) for frame in frames]


def side_by_side(panels_frames) -> list[np.ndarray]:
    """One frame per step, the panels left to right with a grey line between them (drawn over
    the panels' edge columns: the width is the sum of theirs); a finished episode holds its last
    frame."""
    length = max(len(f) for f in panels_frames)
    out = []
    for t in range(length):
        frame = np.concatenate([f[min(t, len(f) - 1)] for f in panels_frames], axis=1)
        edge = 0
        for f in panels_frames[:-1]:
            edge += f[0].shape[1]
            frame[:, edge - 1:edge + 1] = 128
        out.append(frame)
    return out


def write_video(path, frames, fps: float) -> None:
    """A GIF (Pillow) or an MP4 (imageio's ffmpeg, H.264), by the suffix of ``path``."""
    path = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                       duration=max(20, round(1000 / fps)))
        return
    import warnings

    import imageio.v2 as imageio
    with warnings.catch_warnings():  # ffmpeg is started by fork+exec, which JAX warns about
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        writer = imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264",
                                    macro_block_size=2, ffmpeg_log_level="error")
        with writer:
            for f in frames:  # H.264 in yuv420p needs even sides: pad with white
                pad = ((0, f.shape[0] % 2), (0, f.shape[1] % 2), (0, 0))
                writer.append_data(np.pad(f, pad, constant_values=255))


def record_video(run_dir, path, seed: int = 0, env_config: str | None = None,
                 env_id: str | None = None) -> list[dict]:
    """Writes the video of ``run_dir`` to ``path``; returns per panel its member, kind, return,
    parameter count, frame count and the env_config played (the CLI prints them).
    ``env_config``: top-level keys put over the run's (``with_env_config``); ``env_id``: another
    environment with the same spaces (``with_env_id``)."""
    import jax
    path = check_video_path(path)
    algo, config, panels = _panels(run_dir)
    config = with_env_config(with_env_id(config, env_id), env_config)
    env = make_render_env(config)
    try:
        forward = jax.jit(algo.greedy_policy(config.activation, action_space_of(config)))
        all_frames, described = [], []
        for panel in panels:
            params = jax.tree.map(jax.numpy.asarray, panel.params)
            frames, episode_return = play_episode(
                env, lambda obs, p=params: forward(p, obs[None])[0], seed)
            all_frames.append(captioned(frames, caption_lines(panel, episode_return)))
            described.append({"member": panel.member["member"], "kind": panel.kind,
                              "return": episode_return, "parameters": panel.parameters,
                              "frames": len(frames), "env_config": config.env_config})
        fps = float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
    write_video(path, side_by_side(all_frames), fps)
    return described
