"""softmax / log_softmax of scipy.sparse arrays and matrices over their stored entries.

As ``tf.sparse.softmax`` and ``torch.sparse.softmax``: along an axis, each row (axis=1 or
-1) or column (axis=0) is the segment of its stored entries; implicit entries take no part
and stay implicit, so the result has the input's format and sparsity structure (a stored
zero is an entry like any other). ``axis=None`` makes all stored entries one segment.

The stored values run through the segment kernels (``nbsoftmax.segment``): CSR rows and CSC
columns are CSR offsets (``indptr``) as they are; the other axis, and COO, give segment ids
(``indices``, ``row``/``col``), grouped by a stable sort. Duplicate entries of a
non-canonical matrix are summed first (on a copy), as SciPy's arithmetic does.

SciPy is not a dependency: ``nbsoftmax.softmax`` routes an input here only when
``scipy.sparse`` is already imported and ``scipy.sparse.issparse`` says so.
"""

import operator

import numpy as np

_FORMATS = ("csr", "csc", "coo")


def _axis(axis, ndim):
    if axis is None:
        return None
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int or None for sparse input, not {axis!r}")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int or None for sparse input, not {axis!r}") from None
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(f"axis {axis!r} is out of bounds for a {ndim}-d sparse "
                                      "input")
    return a % ndim


def elementwise(op, a, axis, dtype, out, where, temperature, device):
    """op ("softmax" / "log_softmax") of the stored entries of sparse a along axis."""
    from .. import segment

    fmt = a.format
    if fmt not in _FORMATS:
        raise TypeError(f"sparse input in {fmt.upper()} format is not supported; expected CSR, "
                        f"CSC or COO (convert it with .tocsr())")
    for name, value in (("out", out), ("where", where)):
        if value is not None:
            raise TypeError(f"{name}= is not supported for scipy.sparse input; the result is a "
                            "new sparse array of the input's format")
    if device not in (None, "cpu"):
        raise ValueError(f'device must be None or "cpu" for scipy.sparse input, not {device!r}')
    ax = _axis(axis, a.ndim)
    if not a.has_canonical_format:
        a = a.copy()
        a.sum_duplicates()
    data = a.data
    if dtype is not None:
        from . import dtypes as _dtypes

        data = data.astype(_dtypes.requested_dtype(dtype))
    func = segment.segment_softmax if op == "softmax" else segment.segment_log_softmax
    nnz = data.shape[0]
    if ax is None or a.ndim == 1:
        values = func(data, np.array([0, nnz], np.int64), temperature=temperature)
    elif (fmt, ax) == ("csr", 1) or (fmt, ax) == ("csc", 0):
        values = func(data, a.indptr, temperature=temperature)
    else:  # COO, CSR columns or CSC rows: segment ids, the rows' (axis 1) or the columns'
        ids = (a.row if ax == 1 else a.col) if fmt == "coo" else a.indices
        values = func(data, segment_ids=ids, num_segments=a.shape[0] if ax == 1 else a.shape[1],
                      temperature=temperature)
    result = a.copy()
    result.data = values
    return result
