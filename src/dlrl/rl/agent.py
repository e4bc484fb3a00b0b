"""What one DQN agent is made of (its envs, Q-network, replay memory, exploration schedule) and how a stored
one is checked and loaded. The training loop that puts them together is in loop.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError, shown
from dlrl.models.qnet import ConvQNetwork, QNetwork
from dlrl.rl.buffer import FrameReplayBuffer, ReplayBuffer, check_replay_fits
from dlrl.rl.envs import EnvInfo, EnvMaker, env_info
from dlrl.rl.exploration import schedule_value
from dlrl.train.checkpoint import load_checkpoint, load_model_state, require_keys

# Seeds of evaluation episodes are offset from the run seed so they never replay a training episode.
EVAL_SEED_OFFSET = 10_000_000
FINAL_SEED_OFFSET = 20_000_000
CONFIRM_SEED_OFFSET = 30_000_000


def env_maker(cfg: DQNConfig) -> EnvMaker:
    """How ``cfg``'s agent envs are made: the state vector, or the frame pipeline of obs_type=pixels."""
    if cfg.obs_type == "state":
        return EnvMaker(cfg.env)
    p = cfg.pixels
    crop = tuple(p.crop) if p.crop else None
    return EnvMaker(cfg.env, True, crop, tuple(p.size), p.frame_stack, p.action_repeat)


def build_q_network(cfg: DQNConfig, info: EnvInfo) -> nn.Module:
    """An MLP on the state vector, or a conv net on stacked frames (obs_type=pixels)."""
    m = cfg.model
    if cfg.obs_type == "pixels":
        return ConvQNetwork(
            info.obs_shape,
            info.num_actions,
            m.conv_channels,
            m.conv_kernels,
            m.conv_strides,
            m.hidden_sizes,
            m.activation,
            m.dueling,
            m.frame_differences,
        )
    return QNetwork(info.obs_shape, info.num_actions, m.hidden_sizes, m.activation, m.dueling)


def build_replay(cfg: DQNConfig, info: EnvInfo, agents: int = 1) -> ReplayBuffer | FrameReplayBuffer:
    """The replay memory, after checking that ``agents`` of it fit in the memory available."""
    frames = cfg.obs_type == "pixels"
    check_replay_fits(cfg.buffer_size, info.obs_shape, frames, agents)
    if frames:
        return FrameReplayBuffer(cfg.buffer_size, info.obs_shape, cfg.n_step, cfg.gamma)
    return ReplayBuffer(cfg.buffer_size, info.obs_shape, n_step=cfg.n_step, gamma=cfg.gamma)


def exploration_value(cfg: DQNConfig, exploration: str, step: int) -> float:
    """Epsilon (epsilon-greedy) or temperature (softmax) at ``step``."""
    e = cfg.exploration
    if exploration == "epsilon":
        return schedule_value(e.epsilon_decay, step, e.epsilon_start, e.epsilon_end, e.epsilon_steps)
    return schedule_value(
        e.temperature_decay, step, e.temperature_start, e.temperature_end, e.temperature_steps
    )


def check_checkpoint(
    state: dict[str, Any], path: Path, env_id: str, q_net: nn.Module, obs_type: str = "state"
) -> None:
    """One-line CheckpointError if ``state`` is from another environment, observation type or network."""
    require_keys(state, ["model", "env"], path)
    if state["env"] != env_id:
        raise CheckpointError(f"{path}: checkpoint is for env '{shown(state['env'])}', not '{env_id}'")
    stored = state.get("obs_type", "state")
    if stored != obs_type:
        raise CheckpointError(f"{path}: checkpoint is for obs_type={shown(stored)}, not obs_type={obs_type}")
    load_model_state(copy.deepcopy(q_net), state["model"], path)  # raises on a different network size


def check_resumable(path: Path, cfg: DQNConfig) -> None:
    """One-line CheckpointError unless the last.pt at ``path`` can continue under ``cfg`` (same env,
    observation type and network): checked for every agent before any of them trains again."""
    q_net = build_q_network(cfg, env_info(env_maker(cfg)))
    state = load_checkpoint(path, required=("model", "env"))
    check_checkpoint(state, path, cfg.env, q_net, cfg.obs_type)


def load_q_network(path: Path, cfg: DQNConfig) -> nn.Module:
    """The Q-network stored at ``path``, checked against ``cfg``'s env, observation type and network."""
    info = env_info(env_maker(cfg))
    q_net = build_q_network(cfg, info)
    state = load_checkpoint(path, required=("model", "env"))
    check_checkpoint(state, path, cfg.env, q_net, cfg.obs_type)
    q_net.load_state_dict(state["model"])
    q_net.eval()
    return q_net
