"""Hyperparameter search with Ray Tune: K-fold cross validation inside every trial, resumable.

Experiments plug in through one small interface (``dlrl.tune.interface.TuneAdapter``). Importing this
package imports neither ray nor torch-heavy experiment code: ``dlrl.tune.search`` does, when used.
"""
