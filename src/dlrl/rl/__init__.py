"""Reinforcement learning: replay memory, exploration schedules, the DQN update, env helpers, evaluation."""
