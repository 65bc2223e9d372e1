"""The eval video's pieces: which members are shown, what renders a gymnax id, captions,
panels side by side, and GIF / MP4 files that decode."""

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from dspjax.agents.dqn import DQNConfig
from dspjax.agents.ppo import PPOConfig
from dspjax.hparams import ConfigError
from dspjax.train.video import (
    CAPTION_HEIGHT,
    captioned,
    check_video_path,
    make_render_env,
    merged_env_config,
    pick_members,
    play_episode,
    render_env_id,
    side_by_side,
    write_video,
)


def record(i, method, ret, removed, diverged=False, net="actor"):
    return {"member": i, "seed": 0, "grid_point": {"method": method}, "final_return": ret,
            "diverged": diverged, net: {"weights_removed": removed}}


def test_the_best_dense_and_the_best_pruned_member_are_picked():
    summary = {"networks": ["actor", "critic"], "members": [
        record(0, "dense", 100.0, 0.0), record(1, "dense", 200.0, 0.0),
        record(2, "dsp", 150.0, 0.9), record(3, "dsp", 300.0, 0.8, diverged=True),
        record(4, "gmp", 120.0, 0.5), record(5, "dsp", 400.0, 0.0)]}  # 5 pruned nothing: dense
    picked = pick_members(summary)
    assert list(picked) == ["dense", "pruned"]
    assert picked["dense"]["member"] == 5 and picked["pruned"]["member"] == 2
    only_dense = {"networks": ["q"], "members": [record(0, "dense", 1.0, 0.0, net="q")]}
    assert list(pick_members(only_dense)) == ["dense"]


def test_what_renders_an_environment():
    assert render_env_id("CartPole-v1") == "CartPole-v1"
    assert render_env_id("gymnasium:LunarLander-v3") == "LunarLander-v3"
    assert render_env_id("highway-fast-v0") == "highway-fast-v0"
    with pytest.raises(ConfigError, match="'Breakout-MinAtar': a gymnax environment without a renderer"):
        render_env_id("Breakout-MinAtar")
    assert render_env_id("Pendulum-v1") == "Pendulum-v1"  # gymnasium's twin films a box policy
    with pytest.raises(ConfigError, match="'brax:hopper': brax environments have no renderer here"):
        render_env_id("brax:hopper")
    assert merged_env_config("intersection-v1")["action"]["type"] == "DiscreteMetaAction"
    assert merged_env_config("highway-fast-v0", '{"duration": 3}') == {"duration": 3}


def test_video_path_suffix_is_checked(tmp_path):
    assert check_video_path(tmp_path / "a.GIF").suffix == ".GIF"
    with pytest.raises(ConfigError, match=r"must end in \.gif or \.mp4"):
        check_video_path(tmp_path / "a.webm")


def test_a_gymnax_id_plays_on_gymnasiums_twin():
    env = make_render_env(PPOConfig(env_id="CartPole-v1"))
    try:
        frames, total = play_episode(env, lambda obs: 0, seed=0)  # always left: falls in ~10 steps
    finally:
        env.close()
    assert len(frames) == total + 1 and frames[0].shape == (400, 600, 3)
    assert frames[0].std() > 0 and np.abs(frames[-1].astype(int) - frames[0]).sum() > 0


def test_highway_env_draws_headless():
    env = make_render_env(DQNConfig(env_id="highway-fast-v0", env_config='{"duration": 2}'))
    try:
        frames, _ = play_episode(env, lambda obs: 1, seed=0)
    finally:
        env.close()
    assert len(frames) == 3  # 2 s at one decision per second, and the first frame
    assert all(frame.std() > 0 for frame in frames)  # not the blank frames of SDL's dummy driver


def test_panels_are_captioned_and_put_side_by_side():
    left = captioned([np.zeros((20, 30, 3), np.uint8)] * 3, ["dense", "return 1"])
    right = captioned([np.full((20, 30, 3), 9, np.uint8)] * 5, ["dsp", "return 2"])
    assert left[0].shape == (20 + CAPTION_HEIGHT, 30, 3)
    assert left[0][:CAPTION_HEIGHT].min() == 0 < left[0][:CAPTION_HEIGHT].max()  # text on a band
    frames = side_by_side([left, right])
    assert len(frames) == 5 and frames[0].shape == (20 + CAPTION_HEIGHT, 60, 3)
    np.testing.assert_array_equal(frames[4][:, :29], left[-1][:, :29])  # the short one holds
    np.testing.assert_array_equal(frames[4][:, 31:], right[-1][:, 1:])
    assert (frames[0][:, 29:31] == 128).all()  # the line between the panels


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # ffmpeg: fork + exec
def test_gif_and_mp4_decode(tmp_path):
    frames = [np.full((31, 45, 3), 20 * t, np.uint8) for t in range(6)]
    write_video(tmp_path / "v.gif", frames, fps=10)
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.size == (45, 31) and gif.n_frames == 6
    write_video(tmp_path / "v.mp4", frames, fps=10)
    with imageio.get_reader(tmp_path / "v.mp4") as reader:
        decoded = list(reader.iter_data())
    assert len(decoded) == 6 and decoded[0].shape == (32, 46, 3)  # padded to even sides
