"""Gymnasium helpers: validated construction, space sizes, the agent's env (state vector or pixels)."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import gymnasium as gym

from dlrl.errors import DlrlError
from dlrl.rl.pixels import PixelObservation


@dataclass(frozen=True)
class EnvInfo:
    env_id: str
    obs_shape: tuple[int, ...]
    num_actions: int
    max_episode_steps: int | None
    reward_threshold: float | None


def check_env_id(env_id: str) -> None:
    """Raise a one-line DlrlError for an unknown id (with a close match) — before anything is built."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise DlrlError(f"env '{env_id}': unknown Gymnasium environment id{hint}")


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A Gymnasium env with its time limit (so truncation is reported) and without the per-step checker."""
    check_env_id(env_id)
    if render_mode is not None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame without a screen
        # SDL otherwise takes over SIGTERM (turning it into a quit event no one reads): `kill` would no
        # longer stop a pixel run or a video
        os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    try:
        env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True)
    except gym.error.Error as err:
        raise DlrlError(f"env '{env_id}': cannot create it ({str(err).splitlines()[0]})") from None
    except ImportError as err:
        raise DlrlError(f"env '{env_id}': missing dependency ({err})") from None
    return env


@dataclass(frozen=True)
class EnvMaker:
    """How an agent's environments are made: the Gymnasium id and, with ``pixels``, the frame pipeline
    (crop: top, bottom, left, right of the rendered frame or None; size: (H, W); stack: frames per
    observation; repeat: env steps per agent step). Calling it makes one env; ``render=True`` also renders
    frames for a video."""

    env_id: str
    pixels: bool = False
    crop: tuple[int, ...] | None = None
    size: tuple[int, ...] = (32, 96)
    stack: int = 4
    repeat: int = 1

    def __call__(self, render: bool = False) -> gym.Env:
        if not self.pixels:
            return make_env(self.env_id, render_mode="rgb_array" if render else None)
        check_renders(self.env_id)
        env = make_env(self.env_id, render_mode="rgb_array")
        try:
            return PixelObservation(env, self.crop, self.size, self.stack, self.repeat)
        except ValueError as err:
            env.close()
            raise DlrlError(f"env '{self.env_id}': pixels: {err}") from None


def check_renders(env_id: str) -> None:
    """One-line DlrlError unless ``env_id`` renders rgb_array frames (what a pixel agent sees)."""
    env = make_env(env_id)
    modes = list(env.metadata.get("render_modes") or [])
    env.close()
    if "rgb_array" not in modes:
        raise DlrlError(
            f"env '{env_id}': obs_type=pixels needs rgb_array rendering, this environment renders "
            f"{', '.join(modes) or 'nothing'}"
        )


def env_info(env: str | EnvMaker) -> EnvInfo:
    """Spaces of the env; a continuous (or otherwise non-Discrete) action space is a one-line error."""
    maker = env if isinstance(env, EnvMaker) else EnvMaker(env)
    env_id = maker.env_id
    env = maker()
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            kind = (
                "continuous"
                if isinstance(env.action_space, gym.spaces.Box)
                else type(env.action_space).__name__
            )
            raise DlrlError(
                f"env '{env_id}': DQN needs discrete actions, this environment's action space is {kind} "
                f"({env.action_space})"
            )
        if not isinstance(env.observation_space, gym.spaces.Box):
            raise DlrlError(
                f"env '{env_id}': DQN here needs a Box observation space, got {env.observation_space}"
            )
        spec = env.spec
        return EnvInfo(
            env_id,
            tuple(env.observation_space.shape),
            int(env.action_space.n),
            spec.max_episode_steps if spec else None,
            spec.reward_threshold if spec else None,
        )
    finally:
        env.close()
