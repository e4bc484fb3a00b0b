"""dlrl: a deep-learning and reinforcement-learning curriculum project, end to end.

Importing the package does nothing else: no data is read, no Ray is started.
"""

__version__ = "0.1.0"
