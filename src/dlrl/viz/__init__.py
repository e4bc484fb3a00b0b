"""Figure functions: arrays in, matplotlib Figure out.

No training and no file I/O here: RunDir.save_figure writes the figures.
"""
