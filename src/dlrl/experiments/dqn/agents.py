"""A finished DQN run's agents: greedy evaluation on fresh seeds, and videos of greedy episodes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np

from dlrl.config import build_config, read_config_file
from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError, DlrlError, shown
from dlrl.experiments.dqn.jobs import run_name
from dlrl.rl.agent import env_maker, load_q_network
from dlrl.rl.evaluate import greedy_frames, greedy_returns
from dlrl.rundir import RunDir
from dlrl.utils import atomic_path

log = logging.getLogger(__name__)


def load_run_config(run_dir: RunDir) -> DQNConfig:
    if not run_dir.config_path.is_file():
        raise DlrlError(f"{run_dir.path}: not a dlrl run directory (no config.yaml)")
    data = read_config_file(run_dir.config_path)
    if data.get("experiment") != "dqn":
        raise DlrlError(f"{run_dir.path}: is a '{shown(data.get('experiment'))}' run, not a DQN run")
    return build_config(DQNConfig, data, str(run_dir.config_path))


def _agent_names(cfg: DQNConfig, run_dir: RunDir, only: str | None = None) -> list[str]:
    """The run's agents (or just ``only``) that have a best.pt checkpoint."""
    names = [run_name(e, s) for e in cfg.explorations for s in cfg.run_seeds()]
    if only is not None:
        if only not in names:
            raise DlrlError(f"--run {only}: no such agent in {run_dir.path} (choose from {', '.join(names)})")
        names = [only]
    present = [n for n in names if (run_dir.sub(n).checkpoints / "best.pt").is_file()]
    if not present:
        raise CheckpointError(
            f"{run_dir.path}: no best.pt checkpoint in any agent directory ({', '.join(names)})"
        )
    return present


def _seed_of(name: str) -> int:
    return int(name.rpartition("seed")[2])


def evaluate(run_dir: RunDir, episodes: int | None = None, seed_offset: int = 30_000_000) -> dict[str, Any]:
    """Greedy episodes with each agent's best checkpoint on fresh seeds; mean ± std per agent."""
    cfg = load_run_config(run_dir)
    episodes = episodes or cfg.final_episodes
    table = {}
    for name in _agent_names(cfg, run_dir):
        q_net = load_q_network(run_dir.sub(name).checkpoints / "best.pt", cfg)
        returns = greedy_returns(q_net, env_maker(cfg), episodes, _seed_of(name) + seed_offset)
        table[name] = {
            "mean": float(returns.mean()),
            "std": float(returns.std()),
            "min": float(returns.min()),
            "max": float(returns.max()),
        }
    means = np.array([t["mean"] for t in table.values()])
    return {
        "env": cfg.env,
        "episodes": episodes,
        "mean_over_agents": float(means.mean()),
        "min_agent_mean": float(means.min()),
        "agents": table,
    }


def _best_agent(run_dir: RunDir, names: list[str]) -> str:
    """The agent with the best final evaluation (its result.json); agents without one come last."""
    scores = {}
    for n in names:
        result = run_dir.sub(n).path / "result.json"
        scores[n] = json.loads(result.read_text())["final_mean"] if result.is_file() else float("-inf")
    return max(scores, key=scores.__getitem__)


VIDEO_FORMATS = ("gif", "mp4")


def video_format(out: str | None, fmt: str | None) -> str:
    """``play``'s video format: ``fmt``, else the suffix of ``out``, else GIF; a mismatch is an error."""
    suffix = Path(out).suffix.lower().lstrip(".") if out else None
    if fmt is not None and fmt not in VIDEO_FORMATS:
        raise DlrlError(f"--format {fmt}: choose from {', '.join(VIDEO_FORMATS)}")
    if suffix is not None and suffix not in VIDEO_FORMATS:
        raise DlrlError(f"--out {out}: the video path must end in .gif or .mp4")
    if fmt is not None and suffix is not None and fmt != suffix:
        raise DlrlError(f"--out {out}: the path ends in .{suffix} but --format is {fmt}")
    return fmt or suffix or "gif"


def play(
    run_dir: RunDir,
    agent: str | None = None,
    episodes: int = 1,
    every: int = 2,
    out: str | None = None,
    fps: int = 50,
    format: str | None = None,
) -> list[Path]:
    """Greedy episodes of one agent's best checkpoint as a GIF (default) or an MP4 (``format='mp4'`` or an
    ``out`` ending in .mp4); a pixel agent's video shows the processed frames it acted on beside the screen.
    Returns the path written (in a list)."""
    fmt = video_format(out, format)
    cfg = load_run_config(run_dir)
    names = _agent_names(cfg, run_dir, agent)
    name = _best_agent(run_dir, names) if agent is None and len(names) > 1 else names[0]
    q_net = load_q_network(run_dir.sub(name).checkpoints / "best.pt", cfg)
    frames, returns = greedy_frames(q_net, env_maker(cfg), episodes, _seed_of(name) + 40_000_000, every)
    target = Path(out) if out else run_dir.path / "videos" / f"{name}.{fmt}"
    repeat = cfg.pixels.action_repeat if cfg.obs_type == "pixels" else 1  # env steps per frame shown
    write_video(frames, target, fps / (every * repeat))
    log.info("%s: %d greedy episode(s), returns %s", name, episodes, ", ".join(f"{r:g}" for r in returns))
    return [target]


def _even(frame: np.ndarray) -> np.ndarray:
    """``frame`` padded with white to even height and width (H.264 in yuv420p needs both even)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255) if h % 2 or w % 2 else frame


def write_video(frames: Sequence[np.ndarray], target: Path, fps: float) -> None:
    """RGB frames (H, W, 3) uint8 as a looping GIF or an H.264 MP4 (by ``target``'s suffix), atomically.

    The MP4 goes through imageio-ffmpeg, whose wheel ships its own ffmpeg binary."""
    with atomic_path(target) as tmp:
        if target.suffix.lower() == ".mp4":
            staged = tmp.with_name(tmp.name + ".mp4")  # ffmpeg picks the container by the suffix
            try:
                # macro_block_size=2: keep the frame size (the default 16 would rescale a 600-wide frame)
                imageio.mimsave(
                    staged, [_even(f) for f in frames], format="FFMPEG", fps=fps, macro_block_size=2
                )
                os.replace(staged, tmp)
            finally:
                staged.unlink(missing_ok=True)
        else:
            imageio.mimsave(tmp, list(frames), format="GIF", duration=1000 / fps, loop=0)
