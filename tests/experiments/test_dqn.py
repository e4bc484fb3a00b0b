"""`dlrl rl train | evaluate | play` end to end on real CartPole with tiny budgets, and every bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import yaml

from dlrl.cli import main
from dlrl.config.dqn import DQNConfig
from dlrl.experiments import EXPERIMENTS
from dlrl.experiments.dqn import STEPS_PER_SECOND, expected_seconds
from dlrl.experiments.dqn.jobs import progress_logger
from dlrl.experiments.runner import resolve_config

# Two seeds x two explorations, one process: what the module fixture trains and the resume test repeats.
TRAIN_FOUR_AGENTS = [
    "-q",
    "rl",
    "train",
    "--seeds",
    "0,1",
    "--exploration",
    "epsilon,softmax",
    "--workers",
    "1",
]

TINY = [
    "total_steps=200",
    "learning_starts=100",
    "buffer_size=500",
    "batch_size=32",
    "eval_every=100",
    "eval_episodes=2",
    "final_episodes=3",
    "target_update=50",
    "log_every=50",
    "model.hidden_sizes=[16]",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dqn") / "run"
    code = main(
        [
            *TRAIN_FOUR_AGENTS,
            "--out",
            str(out),
            *TINY,
        ]
    )
    assert code == 0
    return out


def test_train_writes_agents_summary_and_figures(trained: Path) -> None:
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["env"] == "CartPole-v1" and summary["seeds"] == 2 and summary["max_steps"] == 200
    assert set(summary["by_exploration"]) == {"epsilon", "softmax"}
    assert set(summary["runs"]) == {"epsilon-seed0", "epsilon-seed1", "softmax-seed0", "softmax-seed1"}
    assert 1 <= summary["min_final_mean"] <= 500
    for name in summary["runs"]:
        assert (trained / name / "checkpoints" / "best.pt").is_file()
        result = json.loads((trained / name / "result.json").read_text())
        assert len(result["final_returns"]) == 3
    figures = {p.stem for p in (trained / "figures").glob("*.png")}
    assert {
        "episode_returns",
        "eval_returns",
        "exploration_schedule",
        "loss_and_q",
        "final_returns",
    } <= figures
    assert "epsilon-seed1" in (trained / "metrics.csv").read_text()


def _mp4_frames(path: Path) -> list[np.ndarray]:
    """The frames of an MP4, decoded by imageio-ffmpeg (no ffprobe)."""
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return list(reader.iter_data())
    finally:
        reader.close()


def test_evaluate_and_play(trained: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["-q", "rl", "evaluate", str(trained), "--episodes", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 4 and len(result["agents"]) == 4
    gif = tmp_path / "agent.gif"
    assert (
        main(["-q", "rl", "play", str(trained), "--run", "epsilon-seed1", "--every", "10", "--out", str(gif)])
        == 0
    )
    assert gif.read_bytes()[:6] == b"GIF89a"
    mp4 = tmp_path / "agent.mp4"
    argv = ["-q", "rl", "play", str(trained), "--run", "epsilon-seed1", "--every", "10"]
    assert main([*argv, "--format", "mp4", "--out", str(mp4)]) == 0
    gif_frames = imageio.mimread(gif, format="GIF")
    mp4_frames = _mp4_frames(mp4)
    assert len(mp4_frames) == len(gif_frames) >= 2  # the same greedy episode, read back from the file
    assert mp4_frames[0].shape == (400, 600, 3)  # not rescaled to ffmpeg's 16-pixel blocks
    # the default path follows the format; a path whose suffix contradicts --format is refused
    assert main([*argv, "--format", "mp4"]) == 0
    assert (trained / "videos" / "epsilon-seed1.mp4").is_file()
    _fails(
        [*argv, "--format", "gif", "--out", str(tmp_path / "x.mp4")],
        "ends in .mp4 but --format is gif",
        capsys,
    )
    _fails([*argv, "--out", str(tmp_path / "x.avi")], "must end in .gif or .mp4", capsys)


def test_resume_keeps_finished_agents(trained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "softmax-seed1" / "result.json").unlink()  # as if killed before this agent finished
    before = (copy / "epsilon-seed0" / "result.json").read_text()
    assert (
        main(
            [
                *TRAIN_FOUR_AGENTS,
                "--out",
                str(copy),
                "--resume",
                *TINY,
            ]
        )
        == 0
    )
    assert (copy / "epsilon-seed0" / "result.json").read_text() == before
    assert json.loads((copy / "softmax-seed1" / "result.json").read_text())["resumed_from"] == 200


@pytest.mark.slow
def test_parallel_seeds_in_spawned_processes(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "par"
    args = ["--seeds", "3,4", "--workers", "2", "--out", str(out), *TINY, "figures=false"]
    assert main(["rl", "train", *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["runs"]) == {"epsilon-seed3", "epsilon-seed4"}
    assert not list(out.rglob("*.png"))  # figures=false
    err = capfd.readouterr().err  # the spawned workers' progress reaches the terminal
    assert "epsilon-seed3: step 100 of 200, greedy" in err and "epsilon-seed4: step 100 of 200" in err, err


def test_progress_lines_are_spaced_in_time(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    on_eval = progress_logger("epsilon-seed0", 30_000, every=30.0, clock=lambda: now[0])
    limited = progress_logger("epsilon-seed1", 30_000, time_limit=150.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="dlrl"):
        for step, wall in [(10_000, 0.0), (20_000, 29.0), (30_000, 31.0)]:
            now[0] = wall
            assert on_eval({"step": step, "score": 9.5, "seconds": step / 100}) is True
        limited({"step": 10_000, "score": 9.5, "seconds": 100.0})
    assert [r.getMessage() for r in caplog.records] == [
        "epsilon-seed0: step 10,000 of 30,000, greedy 9.5, 1:40 so far, at most 3:20 to go",
        "epsilon-seed0: step 30,000 of 30,000, greedy 9.5, 5:00 so far, at most 0:00 to go",
        "epsilon-seed1: step 10,000 of 30,000, greedy 9.5, 1:40 so far, at most 0:50 to go",
    ]


def _fails(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], out: Path | None = None
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    if out is not None:
        assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "CartPole-v7"], "unknown Gymnasium environment id (did you mean 'CartPole-v1'?)"),
        (["--env", "Pendulum-v1"], "DQN needs discrete actions"),
        (["--env", "MountainCarContinuous-v0"], "DQN needs discrete actions"),
        (["buffer_size=0"], "buffer_size: Input should be greater than 0"),
        (["buffer_size=100", "batch_size=128"], "batch_size 128 is larger than buffer_size 100"),
        (["--exploration", "greedy"], "explorations.0: Input should be 'epsilon' or 'softmax'"),
        (["--seeds", "1,x"], "seeds.1"),
        (["obs_type=pixels", "pixels.frame_stack=0"], "pixels.frame_stack: Input should be greater than 0"),
        (["obs_type=pixels", "pixels.crop=[0,500,0,600]"], "does not fit in the rendered 400x600 frame"),
        (["buffer_size=10000000000"], "buffer_size 10,000,000,000: the replay memory needs 447.0 GiB"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, message, capsys, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    _fails(["-q", "rl", "train", "--out", str(out), *args], message, capsys, out)


def test_checkpoint_from_another_env_or_network(trained: Path, tmp_path: Path, capsys) -> None:
    import shutil

    for key, value, message in (
        ("hidden_sizes", [32], "another architecture"),
        ("env", "Acrobot-v1", "checkpoint is for env 'CartPole-v1', not 'Acrobot-v1'"),
    ):
        copy = tmp_path / key
        shutil.copytree(trained, copy)
        config = yaml.safe_load((copy / "config.yaml").read_text())
        if key == "env":
            config["env"] = value
        else:
            config["model"][key] = value
        (copy / "config.yaml").write_text(yaml.safe_dump(config))
        _fails(["-q", "rl", "evaluate", str(copy), "--episodes", "2"], message, capsys)
        _fails(["-q", "rl", "play", str(copy)], message, capsys)


def test_foreign_checkpoints_are_refused(trained: Path, tmp_path: Path, capsys) -> None:
    import shutil

    import torch

    copy = tmp_path / "foreign"
    shutil.copytree(trained, copy)
    best = copy / "epsilon-seed0" / "checkpoints" / "best.pt"
    for content, detail in (
        (torch.nn.Linear(2, 2).state_dict(), "missing model, env"),
        ({"model": [torch.zeros(1)], "env": "CartPole-v1"}, "model is a list"),
        ({"model": {}, "env": torch.zeros(1)}, "env is a Tensor, not a str"),
    ):
        torch.save(content, best)
        message = f"{best}: not a dlrl checkpoint ({detail}"
        _fails(["-q", "rl", "evaluate", str(copy), "--episodes", "2"], message, capsys)
        _fails(["-q", "rl", "play", str(copy), "--run", "epsilon-seed0"], message, capsys)
    # --resume from a last.pt that lacks an entry the resumed agent needs
    last = copy / "softmax-seed1" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["episode"]
    torch.save(state, last)
    (copy / "softmax-seed1" / "result.json").unlink()
    _fails(
        [*TRAIN_FOUR_AGENTS, "--out", str(copy), "--resume", *TINY], f"{last}: not a dlrl checkpoint", capsys
    )


def test_presets_follow_the_env_and_user_keys_win() -> None:
    entry = EXPERIMENTS["dqn"]
    cartpole = resolve_config(entry)
    acrobot = resolve_config(entry, overrides=["env=Acrobot-v1", "lr=3e-4"])
    assert isinstance(acrobot, DQNConfig)
    assert cartpole.total_steps == 30_000 and acrobot.total_steps == 50_000
    assert acrobot.lr == 3e-4 and acrobot.model.hidden_sizes == [128, 128]
    quick = resolve_config(entry, quick=True, options={"env": "MountainCar-v0"})
    assert quick.total_steps == DQNConfig.QUICK["total_steps"]
    lunar = resolve_config(entry, options={"env": "LunarLander-v3"})
    assert (
        lunar.total_steps == 200_000 and lunar.model.hidden_sizes == [256, 256] and lunar.stop_return == 250
    )
    pixels = resolve_config(entry, overrides=["obs_type=pixels", "lr=1e-3"])
    assert pixels.pixels.crop == [160, 320, 0, 600] and pixels.model.dueling and pixels.lr == 1e-3
    assert pixels.total_steps == 200_000 and cartpole.obs_type == "state"
    assert pixels.n_step == 3 and pixels.pixels.action_repeat == 2 and cartpole.n_step == 1
    assert pixels.eval_ema == 0.9995 and pixels.confirm_from == 400 and cartpole.eval_ema is None
    # confirm_from is a CartPole return; another env's pixel agent confirms from its own solve return
    acrobot_pixels = resolve_config(entry, overrides=["env=Acrobot-v1", "obs_type=pixels"])
    assert acrobot_pixels.eval_ema == 0.9995 and acrobot_pixels.confirm_from is None
    # one key of a section the preset sets keeps the preset's other keys of that section (the section's
    # class defaults used to fill it first: the crop and the exploration schedule fell back to them)
    repeat = resolve_config(entry, overrides=["obs_type=pixels", "pixels.action_repeat=2"])
    assert repeat.pixels.crop == [160, 320, 0, 600] and repeat.pixels.action_repeat == 2
    lunar_eps = resolve_config(
        entry, options={"env": "LunarLander-v3"}, overrides=["exploration.epsilon_end=0.1"]
    )
    assert lunar_eps.exploration.epsilon_steps == 25_000 and lunar_eps.exploration.epsilon_end == 0.1


def test_expected_time_counts_rounds_of_workers_and_the_time_limit() -> None:
    cfg = DQNConfig.model_validate({"obs_type": "pixels", "seeds": [0, 1, 2], "workers": 2})
    rate = STEPS_PER_SECOND[("CartPole-v1", "pixels")]
    assert expected_seconds(cfg) == 2 * cfg.total_steps / rate  # 3 agents, 2 at a time
    limited = cfg.model_copy(update={"time_limit": 60.0})
    assert expected_seconds(limited) == 2 * 60.0


def test_tune_adapter_trains_one_evaluation_per_epoch_and_restores() -> None:
    from dlrl.experiments.dqn.adapter import DQNTuneAdapter

    adapter = DQNTuneAdapter()
    cfg = resolve_config(EXPERIMENTS["dqn"], overrides=TINY)
    assert adapter.epochs(cfg) == 2
    trainer = adapter.fold_trainer(cfg, adapter.load_data(cfg), None, None, fold=1)
    first = trainer.train_epoch()
    assert set(first) == set(adapter.metrics) and 1 <= first["val_return"] <= 500
    state = trainer.state()
    assert state["step"] == 100 and state["seed"] == 1
    other = adapter.fold_trainer(cfg, None, None, None, fold=1)
    other.load_state(state)
    assert other.trainer.step == 100 and other.train_epoch()["val_return"] >= 1


PIXELS_TINY = [
    "obs_type=pixels",
    "total_steps=200",
    "learning_starts=100",
    "buffer_size=300",
    "batch_size=16",
    "eval_every=100",
    "eval_episodes=1",
    "confirm_episodes=null",
    "final_episodes=2",
    "log_every=50",
    "pixels.size=[12,36]",
    "pixels.frame_stack=3",
    "model.hidden_sizes=[16]",
    "model.conv_channels=[4,8]",
    "model.conv_kernels=[4,3]",
    "model.conv_strides=[2,1]",
]


def test_pixel_agent_trains_shows_what_it_sees_and_plays(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pixels"
    assert main(["-q", "rl", "train", "--seeds", "0", "--workers", "1", "--out", str(out), *PIXELS_TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["obs_type"] == "pixels" and summary["max_checkpoint_bytes"] > 0
    result = json.loads((out / "epsilon-seed0" / "result.json").read_text())
    assert result["checkpoint_replay_bytes"] > 200 * 12 * 36  # frames, one per step
    assert (out / "figures" / "agent_view.png").is_file()
    mp4 = tmp_path / "pixels.mp4"
    assert main(["-q", "rl", "play", str(out), "--every", "5", "--out", str(mp4)]) == 0
    frames = _mp4_frames(mp4)
    # the screen, a gap, and the 3 frames the agent acted on, each 12x36 scaled by 400 // 36 = 11
    assert frames[0].shape == (400, 600 + 8 + 36 * 11, 3)
    # --resume as a state agent: the config differs in obs_type, refused before anything is written
    before = sorted(p.name for p in out.rglob("*"))
    _fails(
        ["-q", "rl", "train", "--seeds", "0", "--workers", "1", "--out", str(out), "--resume"],
        "obs_type: 'pixels' in the run, 'state' now",
        capsys,
    )
    assert sorted(p.name for p in out.rglob("*")) == before


def test_checkpoint_of_another_observation_type_is_refused(trained: Path, tmp_path: Path, capsys) -> None:
    import shutil

    copy = tmp_path / "obs"
    shutil.copytree(trained, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["obs_type"] = "pixels"  # as if the run had been made for pixels
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    message = "checkpoint is for obs_type=state, not obs_type=pixels"
    _fails(["-q", "rl", "evaluate", str(copy), "--episodes", "2"], message, capsys)
    (copy / "softmax-seed1" / "result.json").unlink()  # an agent left to resume from its last.pt
    last = copy / "softmax-seed1" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    argv = [*TRAIN_FOUR_AGENTS, "--out", str(copy), "--resume", "--config", str(copy / "config.yaml")]
    _fails(argv, message, capsys)
    assert last.read_bytes() == before and not (copy / "softmax-seed1" / "result.json").exists()


class _NoFrames(gym.Env):
    """An env that renders for humans only: no rgb_array frames for a pixel agent."""

    metadata: ClassVar[dict] = {"render_modes": ["human"]}
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}


def test_pixels_need_an_env_that_renders_frames(capsys, tmp_path: Path) -> None:
    if "DlrlTest/NoFrames-v0" not in gym.registry:
        gym.register("DlrlTest/NoFrames-v0", entry_point=_NoFrames, max_episode_steps=10)
    out = tmp_path / "noframes"
    message = (
        "env 'DlrlTest/NoFrames-v0': obs_type=pixels needs rgb_array rendering, this environment renders"
    )
    _fails(
        ["-q", "rl", "train", "--env", "DlrlTest/NoFrames-v0", "--out", str(out), "obs_type=pixels"],
        message,
        capsys,
        out,
    )
