"""Loops over slices: the table of serial and ``prange`` drivers of the CPU kernels.

``*_rows_*`` take the array as ``(rows, n)``, one softmax slice per row (``*_short_*``: blocks
of short rows). ``*_columns_*`` take it as ``(outer, n, inner)`` in tasks of up to ``tile``
adjacent columns, and pieces of the softmax axis when the tasks are too few (``(4096, 1000)``
over axis 0). ``*_split_*`` cut long rows among threads; ``*_scaled_*``, ``lse_*``,
``xent_*`` and ``topk_*`` serve the options and the other functions. Work arrays are
allocated inside the serial kernels each task calls, so they are private to a thread.

Every driver is listed here, grouped by layout with its serial and parallel twins side by
side, and defined in the module of its idea (``_drivers_rows``, ``_drivers_columns``,
``_drivers_split``, ``_drivers_scaled``); ``_registry`` compiles them by name from here.
The drivers are written out one by one rather than made by a factory: Numba's on-disk cache
keys closures by their shared qualified name, so factory-made drivers would evict each
other from the cache.
"""

# fmt: off
from ._drivers_rows import (  # noqa: F401
    softmax_rows_serial, softmax_rows_parallel,
    log_softmax_rows_serial, log_softmax_rows_parallel,
    softmax_block_serial, softmax_block_parallel,
    softmax_rows_general_serial, softmax_rows_general_parallel,
    log_softmax_rows_general_serial, log_softmax_rows_general_parallel,
    logsumexp_rows_serial, logsumexp_rows_parallel,
    softmax_backward_rows_serial, softmax_backward_rows_parallel,
    log_softmax_backward_rows_serial, log_softmax_backward_rows_parallel,
    softmax_short_serial, softmax_short_parallel,
    log_softmax_short_serial, log_softmax_short_parallel,
    softmax_backward_short_serial, softmax_backward_short_parallel,
    log_softmax_backward_short_serial, log_softmax_backward_short_parallel,
)
from ._drivers_columns import (  # noqa: F401
    softmax_columns_serial, softmax_columns_parallel,
    log_softmax_columns_serial, log_softmax_columns_parallel,
    logsumexp_columns_serial, logsumexp_columns_parallel,
    softmax_backward_columns_serial, softmax_backward_columns_parallel,
    log_softmax_backward_columns_serial, log_softmax_backward_columns_parallel,
)
from ._drivers_split import (  # noqa: F401
    softmax_split_parallel,
    log_softmax_split_parallel,
    logsumexp_split_parallel,
    softmax_backward_split_parallel,
    log_softmax_backward_split_parallel,
)
from ._drivers_scaled import (  # noqa: F401
    softmax_scaled_serial, softmax_scaled_parallel,
    log_softmax_scaled_serial, log_softmax_scaled_parallel,
    logsumexp_scaled_serial, logsumexp_scaled_parallel,
    lse_rows_serial, lse_rows_parallel,
    lse_backward_rows_serial, lse_backward_rows_parallel,
    softmax_backward_scaled_serial, softmax_backward_scaled_parallel,
    log_softmax_backward_scaled_serial, log_softmax_backward_scaled_parallel,
    xent_index_serial, xent_index_parallel,
    xent_probs_serial, xent_probs_parallel,
    topk_rows_serial, topk_rows_parallel,
)
# fmt: on
