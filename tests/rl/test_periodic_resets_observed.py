"""Periodic network resets (reset_every), observed while a real agent trains: each one happens at its
step, draws new weights for every layer, syncs the target net and clears Adam's state, and learning goes on
from there. (The test beside it, test_periodic_resets_run, checked only that such a run ends.)"""

from __future__ import annotations

import torch

from dlrl.config.dqn import DQNConfig
from dlrl.rl.loop import DQNTrainer, train_dqn

TINY = {
    "total_steps": 300,
    "learning_starts": 50,
    "buffer_size": 500,
    "batch_size": 32,
    "eval_every": 150,
    "eval_episodes": 2,
    "target_update": 50,
    "log_every": 50,
    "model": {"hidden_sizes": [16]},
    "exploration": {"epsilon_steps": 200, "temperature_steps": 200},
}


def _weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_every_reset_draws_new_weights_syncs_the_target_and_clears_adam(tmp_path, monkeypatch) -> None:
    seen: list[dict] = []
    original = DQNTrainer.reset_networks

    def observed(self: DQNTrainer) -> None:
        before = _weights(self.q_net)
        had_adam_state = bool(self.optimizer.state)
        original(self)
        seen.append(
            {
                "step": len(self.replay),  # one transition per step, the memory not yet full
                "before": before,
                "after": _weights(self.q_net),
                "target": _weights(self.target_net),
                "had_adam_state": had_adam_state,
                "adam_state_after": bool(self.optimizer.state),
            }
        )

    monkeypatch.setattr(DQNTrainer, "reset_networks", observed)
    cfg = DQNConfig.model_validate({**TINY, "reset_every": 100})
    train_dqn(cfg, "epsilon", 0, tmp_path / "resets")

    assert [r["step"] for r in seen] == [100, 200]  # not at the last step: the trained net is kept
    for reset in seen:
        assert reset["had_adam_state"] and not reset["adam_state_after"]
        for name, value in reset["after"].items():
            assert not torch.equal(value, reset["before"][name]), (reset["step"], name)
            assert torch.equal(reset["target"][name], value), (reset["step"], name)
    # learning goes on after the last reset: the final weights are not the freshly drawn ones
    last = torch.load(tmp_path / "resets" / "last.pt", weights_only=True)["model"]
    assert any(not torch.equal(last[k], v) for k, v in seen[-1]["after"].items())


def test_resets_change_where_training_ends(tmp_path) -> None:
    with_resets = train_dqn(
        DQNConfig.model_validate({**TINY, "reset_every": 100}), "epsilon", 0, tmp_path / "a"
    )
    without = train_dqn(DQNConfig.model_validate(TINY), "epsilon", 0, tmp_path / "b")
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(not torch.equal(a[k], b[k]) for k in a)
    # the first 100 steps are the same run: resets change only what comes after them
    assert with_resets.episodes[0] == without.episodes[0]
