"""The DQN update: TD target, Huber loss, gradient clipping, Double-DQN, target-network sync."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlrl.rl.buffer import Transition


def td_target(
    rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float | torch.Tensor
) -> torch.Tensor:
    """r + gamma * (1 - terminated) * next_q, elementwise over the batch (all (B,); gamma a float or (B,))."""
    return rewards + gamma * (1.0 - terminated) * next_q


@torch.no_grad()
def polyak_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, in place; tau=1 is a hard copy."""
    online_params: list[torch.Tensor] = list(online.parameters())
    target_params: list[torch.Tensor] = list(target.parameters())
    if tau >= 1.0:
        torch._foreach_copy_(target_params, online_params)
    else:
        torch._foreach_lerp_(target_params, online_params, tau)


class UpdateStats(NamedTuple):
    loss: torch.Tensor  # scalar, batch mean
    q_mean: torch.Tensor  # scalar: mean Q of the actions taken, a running estimate of the values learnt


def dqn_update(
    q_net: nn.Module,
    target_net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Transition,
    gamma: float,
    double: bool = True,
    huber: bool = True,
    grad_clip: float | None = 10.0,
) -> UpdateStats:
    """One gradient step on a replay batch; returns detached stats (no .item(): the caller syncs rarely)."""
    with torch.no_grad():
        next_q_all = target_net(batch.next_obs)  # (B, A)
        if double:  # the online net picks the action, the target net values it
            next_action = q_net(batch.next_obs).argmax(dim=1, keepdim=True)
            next_q = next_q_all.gather(1, next_action).squeeze(1)
        else:
            next_q = next_q_all.max(dim=1).values
        discount = gamma if batch.discount is None else batch.discount  # n-step: gamma ** rewards summed
        target = td_target(batch.reward, batch.terminated, next_q, discount)  # (B,)
    q = q_net(batch.obs).gather(1, batch.action.unsqueeze(1)).squeeze(1)  # (B, A) -> (B,)
    loss = F.smooth_l1_loss(q, target) if huber else F.mse_loss(q, target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(q_net.parameters(), grad_clip, foreach=True)
    optimizer.step()
    return UpdateStats(loss.detach(), q.detach().mean())
