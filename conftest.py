"""Collection of the doctests in nbsoftmax/ (--doctest-modules): a module built on an optional
dependency is left out where that dependency is not installed (the test extra has none)."""

import importlib.util

_OPTIONAL = {"nbsoftmax/dask.py": "dask"}

collect_ignore = [path for path, module in _OPTIONAL.items() if importlib.util.find_spec(module) is None]
