"""Hyperparameter search with Ray Tune: K-fold cross validation inside every trial, resumable.

Generic Ray glue: a search takes an adapter object (``dlrl.tuning.adapter.TuneAdapter``) that each experiment
exports, and imports no experiment. Importing this package imports neither ray nor torch:
``dlrl.tuning.search`` does, when used.
"""
