"""Tiny real CartPole runs of the DQN loop: a few hundred steps, learning from step 100."""

import numpy as np
import pytest
import torch

from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError
from dlrl.rl.agent import env_maker, load_q_network
from dlrl.rl.evaluate import GreedyEvaluator
from dlrl.rl.loop import EVAL_SEED_OFFSET, DQNTrainer, train_dqn
from dlrl.train.checkpoint import load_checkpoint

TINY = {
    "total_steps": 300,
    "learning_starts": 100,
    "buffer_size": 500,
    "batch_size": 32,
    "eval_every": 150,
    "eval_episodes": 2,
    "target_update": 50,
    "log_every": 50,
    "model": {"hidden_sizes": [16]},
    "exploration": {"epsilon_steps": 200, "temperature_steps": 200},
}


def tiny(**changes) -> DQNConfig:
    return DQNConfig.model_validate({**TINY, **changes})


def test_train_writes_histories_and_checkpoints(tmp_path):
    result = train_dqn(tiny(), "epsilon", 0, tmp_path)
    assert result.steps == 300
    assert [e["step"] for e in result.evals] == [150, 300]
    assert result.episodes and all(1 <= e["length"] <= 500 for e in result.episodes)
    assert sum(e["length"] for e in result.episodes) <= 300
    logged = [u for u in result.updates if "loss" in u]
    assert logged and all(u["step"] >= 100 for u in logged)  # no updates during warm-up
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 300 and state["env"] == "CartPole-v1"
    assert {"model", "target", "optimizer", "numpy_rng", "torch_rng", "config"} <= set(state)
    assert (tmp_path / "best.pt").is_file()


def test_same_seed_same_run_and_softmax_runs(tmp_path):
    a = train_dqn(tiny(), "softmax", 3, tmp_path / "a")
    b = train_dqn(tiny(), "softmax", 3, tmp_path / "b")
    assert a.episodes == b.episodes and a.updates == b.updates
    assert a.evals[-1]["eval_mean"] == b.evals[-1]["eval_mean"]
    c = train_dqn(tiny(), "softmax", 4, tmp_path / "c")
    assert c.episodes != a.episodes


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    first = train_dqn(tiny(total_steps=150), "epsilon", 0, tmp_path)
    assert first.steps == 150
    resumed = train_dqn(tiny(), "epsilon", 0, tmp_path, resume=True)
    assert resumed.resumed_from == 150 and resumed.steps == 300
    assert [e["step"] for e in resumed.evals] == [150, 300]  # history carried over
    assert resumed.episodes[: len(first.episodes)] == first.episodes


def test_early_stop_at_stop_return(tmp_path):
    result = train_dqn(tiny(stop_return=1.0), "epsilon", 0, tmp_path)  # any evaluation reaches 1
    assert result.stopped_early and result.steps == 150


def test_time_limit_stops_before_the_next_evaluation_would_pass_it(tmp_path):
    result = train_dqn(tiny(time_limit=1e-9), "epsilon", 0, tmp_path)  # any 150 steps take longer
    assert result.stopped_early and result.steps == 150 and [e["step"] for e in result.evals] == [150]
    assert train_dqn(tiny(time_limit=3600.0), "epsilon", 0, tmp_path / "b").steps == 300


def test_checkpoint_from_another_env_or_network_is_refused(tmp_path):
    train_dqn(tiny(total_steps=150), "epsilon", 0, tmp_path)
    with pytest.raises(CheckpointError, match="another architecture"):
        load_q_network(tmp_path / "best.pt", tiny(model={"hidden_sizes": [32]}))
    with pytest.raises(CheckpointError, match="for env 'CartPole-v1', not 'Acrobot-v1'"):
        load_q_network(tmp_path / "best.pt", tiny(env="Acrobot-v1"))
    with pytest.raises(CheckpointError, match="for env 'CartPole-v1'"):
        train_dqn(tiny(env="Acrobot-v1"), "epsilon", 0, tmp_path, resume=True)
    q_net = load_q_network(tmp_path / "best.pt", tiny())
    assert q_net(torch.zeros(1, 4)).shape == (1, 2)


def test_reset_networks_keeps_replay_and_syncs_target(tmp_path):
    trainer = DQNTrainer(tiny(), "epsilon", 0)
    try:
        trainer.train(200)
        before = [p.clone() for p in trainer.q_net.parameters()]
        stored = len(trainer.replay)
        assert trainer.optimizer.state
        trainer.reset_networks()
        after = list(trainer.q_net.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert all(torch.equal(a, b) for a, b in zip(after, trainer.target_net.parameters(), strict=True))
        assert not trainer.optimizer.state and len(trainer.replay) == stored == 200
        trainer.train(300)  # learning goes on from the kept replay memory
        assert trainer.step == 300 and trainer.optimizer.state
    finally:
        trainer.close()


def test_periodic_resets_run(tmp_path):
    result = train_dqn(tiny(reset_every=100), "epsilon", 0, tmp_path)
    assert result.steps == 300 and len(result.evals) == 2


class FixedReturns:
    """Stands in for a GreedyEvaluator: hands out the given evaluation returns in order."""

    def __init__(self, *returns: list[float]):
        self.queue = [np.array(r, dtype=float) for r in returns]
        self.seeds: list[int] = []

    def returns(self, q_net, seed: int) -> np.ndarray:
        self.seeds.append(seed)
        return self.queue.pop(0)

    def close(self) -> None:
        pass


def evaluate_at(trainer, step: int) -> bool:
    trainer.step = step  # as the training loop sets it before evaluating
    return trainer._evaluate(step, None)


def test_high_evaluation_counts_only_once_confirmed_on_more_episodes(tmp_path):
    # solve return 475 (CartPole-v1), stop at 500; 20-episode means stand in as 2 and 3 numbers
    trainer = DQNTrainer(tiny(confirm_episodes=3, stop_return=500.0), "epsilon", 0, tmp_path)
    real = trainer.confirmer
    trainer.evaluator = FixedReturns([400, 420], [480, 500], [500, 500], [500, 500])
    trainer.confirmer = FixedReturns([300, 500, 400], [500, 490, 500], [500, 500, 500])
    try:
        assert evaluate_at(trainer, 100) is False  # 410: below 475, not re-checked, best so far
        assert evaluate_at(trainer, 200) is False  # 490 fails confirmation (400): not best
        assert load_checkpoint(tmp_path / "best.pt")["step"] == 100
        assert trainer.result.best_eval == 410 and trainer.result.solved_step is None
        assert evaluate_at(trainer, 300) is False  # 500 confirmed at 496.7: best and solved, no stop
        assert load_checkpoint(tmp_path / "best.pt")["step"] == 300
        assert trainer.result.solved_step == 300
        assert evaluate_at(trainer, 400) is True  # confirmed 500: stop
        rows = trainer.result.evals
        assert [r["confirmed"] for r in rows] == [0, 1, 1, 1]
        assert [r["score"] for r in rows] == pytest.approx([410, 400, 496.6667, 500], abs=1e-3)
        assert [r["eval_mean"] for r in rows] == [410, 490, 500, 500]
        # confirmation episodes never reuse the seeds of another evaluation
        seeds = [s + i for s in trainer.confirmer.seeds for i in range(3)]
        assert len(set(seeds)) == len(seeds)
    finally:
        trainer.confirmer = real
        trainer.close()


def test_confirm_from_compares_candidates_below_the_solve_return_on_more_episodes(tmp_path):
    trainer = DQNTrainer(tiny(confirm_episodes=3, confirm_from=400.0), "epsilon", 0, tmp_path)
    real = trainer.confirmer
    trainer.evaluator = FixedReturns([380, 380], [460, 470], [440, 440])
    trainer.confirmer = FixedReturns([400, 410, 420], [450, 440, 430])
    try:
        evaluate_at(trainer, 100)  # 380: below 400, counts as it is
        evaluate_at(trainer, 200)  # a lucky 465, confirmed at 410
        evaluate_at(trainer, 300)  # 440, confirmed at 440: the better policy keeps best.pt
        assert [r["confirmed"] for r in trainer.result.evals] == [0, 1, 1]
        assert [r["score"] for r in trainer.result.evals] == [380, 410, 440]
        assert load_checkpoint(tmp_path / "best.pt")["step"] == 300
        assert trainer.result.solved_step is None  # confirmed, but below the solve return (475)
    finally:
        trainer.confirmer = real
        trainer.close()


def test_no_confirmation_when_switched_off(tmp_path):
    trainer = DQNTrainer(tiny(confirm_episodes=None, stop_return=500.0), "epsilon", 0, tmp_path)
    assert trainer.confirmer is None
    trainer.evaluator = FixedReturns([500, 500])
    try:
        assert evaluate_at(trainer, 100) is True  # the 2-episode mean alone stops training
        assert trainer.result.evals[0]["confirmed"] == 0
    finally:
        trainer.close()


def test_eval_ema_averages_the_online_weights_after_each_update(tmp_path):
    decay = 0.9
    trainer = DQNTrainer(tiny(eval_ema=decay, train_freq=1, gradient_steps=1, eval_every=1000), "epsilon", 0)
    try:
        expected = [p.detach().clone() for p in trainer.q_net.parameters()]
        for step in range(1, 130):
            trainer.train(step)
            if step >= trainer.learn_from:  # one update per step from learning_starts on
                for average, online in zip(expected, trainer.q_net.parameters(), strict=True):
                    average.lerp_(online.detach(), 1.0 - decay)
        averaged = list(trainer.eval_net.parameters())
        assert all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(averaged, expected, strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(averaged, trainer.q_net.parameters(), strict=True))
    finally:
        trainer.close()


def test_eval_ema_changes_what_is_evaluated_and_kept_not_the_training(tmp_path):
    # long enough for greedy policies that differ (the tiny runs' all balance ~9 steps)
    learning = {"total_steps": 1000, "eval_every": 500, "confirm_episodes": None, "figures": False}
    online = train_dqn(DQNConfig.model_validate(learning), "epsilon", 0, tmp_path / "online")
    cfg = DQNConfig.model_validate({**learning, "eval_ema": 0.99})
    averaged = train_dqn(cfg, "epsilon", 0, tmp_path / "averaged")
    assert averaged.episodes == online.episodes and averaged.updates == online.updates
    means = {run: [e["eval_mean"] for e in r.evals] for run, r in (("online", online), ("ema", averaged))}
    assert means["online"] != means["ema"]
    net = load_q_network(tmp_path / "averaged" / "best.pt", cfg)  # best.pt: the weights evaluated
    evaluator = GreedyEvaluator(env_maker(cfg), cfg.eval_episodes)
    try:
        mean = float(evaluator.returns(net, EVAL_SEED_OFFSET + averaged.best_step).mean())
    finally:
        evaluator.close()
    assert mean == averaged.best_eval
