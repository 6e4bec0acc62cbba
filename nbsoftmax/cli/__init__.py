"""The command-line applications built on the library: ``nbsoftmax`` and its subcommands.

``main`` (the parser and the demo), ``bench`` (side-by-side benchmark against the peers),
``score`` and ``score_cluster`` (scoring array files, locally or on a Dask cluster), with
their helpers ``arrayfile`` (.npy/.npz reading), ``progress`` and ``topk``; ``info`` and
``warmup``. Nothing of the library imports this package.
"""

from .main import main

__all__ = ["main"]
