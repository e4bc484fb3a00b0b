"""A hyperparameter search of one experiment: resolve it, run it with the tune layer, train the best config.

(Being moved here from dlrl.tune.search: the tune layer is generic Ray glue and imports no experiment.)
"""

from dlrl.tune.search import SearchSetup, resolve_search, run_search

__all__ = ["SearchSetup", "resolve_search", "run_search"]
