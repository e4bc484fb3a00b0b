"""Figure functions: arrays in, matplotlib Figure out. No training, no file I/O (RunDir.save_figure writes)."""
