"""Gymnasium helpers: validated construction, space sizes, seeding."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import gymnasium as gym

from dlrl.errors import DlrlError


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
    try:
        env = gym.make(env_id, render_mode=render_mode, disable_env_checker=True)
    except gym.error.Error as err:
        raise DlrlError(f"env '{env_id}': cannot create it ({str(err).splitlines()[0]})") from None
    except ImportError as err:
        raise DlrlError(f"env '{env_id}': missing dependency ({err})") from None
    return env


def env_info(env_id: str) -> EnvInfo:
    """Spaces of ``env_id``; a continuous (or otherwise non-Discrete) action space is a one-line error."""
    env = make_env(env_id)
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
