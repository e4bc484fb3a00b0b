"""Generic supervised training: epochs, evaluation, early stopping, checkpoints, resume."""
