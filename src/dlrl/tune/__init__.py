"""Hyperparameter search with Ray Tune: K-fold cross validation inside every trial, resumable.

Experiments plug in through one small interface (``dlrl.tune.interface.TuneAdapter``). Importing this
package imports neither ray nor torch-heavy experiment code; ``run_search`` does when it runs.
"""

from __future__ import annotations

from typing import Any


def run_search(*args: Any, **kwargs: Any) -> Any:
    """See :func:`dlrl.tune.search.run_search`."""
    from dlrl.tune import search

    return search.run_search(*args, **kwargs)


def search_section(*args: Any, **kwargs: Any) -> Any:
    """See :func:`dlrl.tune.search.search_section` (what ``dlrl run`` calls for its search section)."""
    from dlrl.tune import search

    return search.search_section(*args, **kwargs)


def resolve_search(*args: Any, **kwargs: Any) -> Any:
    """See :func:`dlrl.tune.search.resolve_search`."""
    from dlrl.tune import search

    return search.resolve_search(*args, **kwargs)
