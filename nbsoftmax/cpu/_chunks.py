"""Long kernel calls cut into chunks of rows, so that Ctrl-C takes effect within ~0.1 s.

A Numba kernel holds the interpreter until it returns: a SIGINT only sets a flag, and the
KeyboardInterrupt is raised at the next Python bytecode (a 51 s softmax_topk ignored Ctrl-C
for 31 s). ``call_in_chunks`` runs a kernel over consecutive ranges of rows instead, each call
timed: the first range is ``first_elements`` elements (a few ms for the memory-bound kernels),
the next ones sized from the measured time towards ``CHUNK_SECONDS``. Rows are independent in
every kernel, so the result is the same; calls under ``first_elements`` are not cut (no cost).

After an interrupt, the rows of the finished chunks hold their results and the others hold
what was there before, or a staged copy of the input: the function raises KeyboardInterrupt
and returns nothing, so no partial result is handed out as done, and ``out`` (or an input
given as ``out``) must be treated as undefined.
"""

import time

import numpy as np

# Seconds per chunk: about the latency of Ctrl-C, against ~5-10 us of Python per chunk.
CHUNK_SECONDS = 0.1
# Elements of the first chunk of the memory-bound kernels: 16M elements take 3-30 ms at the
# 1-25 GB/s that every kernel reached here (2-core Zen 3), so calls below it are never cut.
FIRST_ELEMENTS = 1 << 24
_MAX_GROWTH = 8.0


def call_in_chunks(kernel, args, rows, row_elements, sliced=None, first_elements=None):
    """kernel(*args), or the same over ranges of rows: the arrays among args (or args[p] for
    p in ``sliced``) are cut along their first axis; other arguments are passed as they are."""
    if first_elements is None:
        first_elements = FIRST_ELEMENTS
    if rows * row_elements <= first_elements or rows < 2:
        kernel(*args)
        return
    step = max(1, first_elements // max(1, row_elements))
    start = 0
    while start < rows:
        stop = min(rows, start + step)
        part = [a[start:stop] if (p in sliced if sliced is not None else
                                  isinstance(a, np.ndarray)) else a for p, a in enumerate(args)]
        t = time.perf_counter()
        kernel(*part)
        elapsed = time.perf_counter() - t
        start = stop
        growth = CHUNK_SECONDS / elapsed if elapsed > 0 else _MAX_GROWTH
        step = max(1, int(step * min(growth, _MAX_GROWTH)))
