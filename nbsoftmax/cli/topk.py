"""Top-k selection along the last axis: the k largest values of each row, sorted descending,
ties broken towards the lower index (as a stable sort on ``-value`` would, without sorting
whole rows).

Per row: ``np.partition`` finds the k-th largest value ``t``; every entry above ``t`` is
chosen, and entries equal to ``t`` fill the remaining places from the lowest index up. The k
chosen entries, taken in index order, are then stably sorted by value. Work and temporaries
are O(n) per row (a partitioned copy, a few boolean masks); only the k chosen per row are
sorted.

A row holding NaN (softmax makes the whole slice NaN) counts as all ties: it yields indices
0..k-1, with the NaN values.
"""

import numpy as np

# Bytes of temporaries per input element that ``top_k`` may hold at once, besides its input:
# the partitioned copy (itemsize, counted by the caller as a second copy) plus the masks.
TEMP_BYTES_PER_ELEMENT = 4


def top_k(values, k):
    """(indices int64 (rows, k), values (rows, k)) of the k largest entries of each row."""
    rows, n = values.shape
    if k > n or k < 1:
        raise ValueError(f"k={k} must be between 1 and the row length {n}")
    if rows == 0:
        return np.empty((0, k), np.int64), np.empty((0, k), values.dtype)
    keys = values
    nan_rows = np.isnan(values).any(axis=1)
    if nan_rows.any():
        keys = values.copy()
        keys[nan_rows] = 0  # all ties: the lowest indices win
    threshold = np.partition(keys, n - k, axis=1)[:, n - k : n - k + 1]
    chosen = keys > threshold
    above = chosen.sum(axis=1)
    ties = keys == threshold
    short = k - above  # places left for entries equal to the threshold
    crowded = np.flatnonzero(ties.sum(axis=1) > short)
    chosen |= ties
    if crowded.size:  # more ties than places: keep the lowest-index ones
        cum = np.cumsum(ties[crowded], axis=1, dtype=np.int32)
        chosen[crowded] &= ~ties[crowded] | (cum <= short[crowded, None])
    del ties
    # Exactly k per row now; nonzero walks rows in order and each row by increasing index.
    indices = np.nonzero(chosen)[1].reshape(rows, k)
    del chosen
    picked = np.take_along_axis(keys, indices, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    indices = np.take_along_axis(indices, order, axis=1).astype(np.int64, copy=False)
    return indices, np.take_along_axis(values, indices, axis=1)
