"""cross_entropy's target, ignore_index and weight arguments, checked as torch checks them.

Shared by the CPU dispatch and the GPU backend's host path, so that both raise the same
errors before anything runs (issue 10 items 4 and 12):

* ``ignore_index`` is an int (a bool or a float is a TypeError, as in torch: ``0.5`` used to be
  compared as 0.5 while class 0 was zeroed as ``int(0.5)``), within int64.
* class indices of any integer dtype are range-checked in their own dtype: a uint64 target
  ``2**64 - 100`` is out of range, not -100 (ignored) after a cast to int64.
* class probabilities with an ``ignore_index >= 0``: ValueError, as torch ("ignore_index is
  not supported for floating point target"); a negative one can match no class and is
  accepted, as torch does (its default is -100).
"""

import numpy as np

_INT64 = np.iinfo(np.int64)


def check_ignore_index(ignore_index):
    """ignore_index as a Python int in int64's range; TypeError/ValueError otherwise."""
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index,
                                                                    (int, np.integer)):
        raise TypeError(f"ignore_index must be an int, not {ignore_index!r} "
                        f"({type(ignore_index).__name__})")
    value = int(ignore_index)
    if not _INT64.min <= value <= _INT64.max:
        raise ValueError(f"ignore_index={value} is outside int64's range")
    return value


def class_weight(weight, n_classes):
    """weight as a C-contiguous float64 (n_classes,) array, or None."""
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"weight has unsupported dtype {w.dtype}; expected real numbers")
    if w.shape != (n_classes,):
        raise ValueError(f"weight has shape {w.shape}; expected ({n_classes},), one per class")
    return np.ascontiguousarray(w, np.float64)


def check_class_indices(t, rest_shape, n_classes, ignore_index):
    """The kept mask of integer targets t (shape rest_shape), raising ValueError for a kept
    index outside [0, n_classes) in t's own dtype (no wraparound through int64)."""
    if t.shape != tuple(rest_shape):
        raise ValueError(f"target has shape {t.shape}; class indices need the logits' shape "
                         f"without the class axis, {tuple(rest_shape)}")
    flat = t.reshape(-1)
    info = np.iinfo(t.dtype)
    if info.min <= ignore_index <= info.max:
        keep = flat != t.dtype.type(ignore_index)
    else:  # no value of this dtype equals it
        keep = np.ones(flat.shape, bool)
    kept = flat[keep]
    if kept.size:
        low, high = kept.min(), kept.max()
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(f"target has class indices outside [0, {n_classes}) other than "
                             f"ignore_index={ignore_index}, e.g. {int(bad)} ({t.dtype})")
    return keep


def class_indices(t, rest_shape, n_classes, ignore_index, weight):
    """(int64 targets as rows, the "mean" denominator: count or weight sum of the kept ones)."""
    keep = check_class_indices(t, rest_shape, n_classes, ignore_index)
    # every value is now in [0, n_classes) or equal to ignore_index: exact in int64
    rows = np.ascontiguousarray(t, np.int64).reshape(-1)
    denominator = int(keep.sum()) if weight is None else weight[rows[keep]].sum()
    return rows, denominator


def check_probabilities(t, shape, ignore_index):
    """Checks of class-probability targets: the logits' shape, no ignore_index >= 0."""
    if t.shape != tuple(shape):
        raise ValueError(f"target has shape {t.shape}; class probabilities need the "
                         f"logits' shape {tuple(shape)}")
    if ignore_index >= 0:
        raise ValueError(f"ignore_index={ignore_index} applies to class-index targets only; "
                         "target holds class probabilities (as torch, which raises too)")


def probabilities_denominator(rest_shape, n_classes):
    """The "mean" denominator of probability targets: the number of rows; 0 (a NaN mean, as
    torch's) when there are no classes either."""
    return int(np.prod(rest_shape)) if n_classes else 0
