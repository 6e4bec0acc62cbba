"""cross_entropy on the GPU (``_kernels_xent``): a device plan in, results of the logits' kind.

The class axis is last in memory for the kernels (the plan's strides, ``Layout.rows``): logits
of that dense order are read in place, others staged once by the copy kernel (into the
gradient when there is one); targets are staged as int64 class indices or as probabilities
in the logits' order; the loss (a 0-d array for "mean"/"sum", the per-sample losses for
"none") and the gradient are allocated by the logits' library.
"""

import numpy as np

from . import _memory


@_memory.on_device
def cross_entropy_device(plan):
    from . import _arrays, _launch
    from . import _kernels_xent as K
    from ._arrays import c_strides

    o = plan.options
    (xd,) = plan.inputs
    td, wd = o.target, o.weight
    rdtype = plan.dtype
    reduction, rest = o.reduction, o.rest_shape
    rows, n, _ = plan.form
    s = _arrays.call_stream(plan.stream, tuple(d for d in (xd, td, wd) if d is not None))
    row_strides = o.strides
    size = xd.size
    grad = gflat = None
    if o.return_grad:
        grad, gflat = _arrays.allocate(xd, xd.shape, row_strides, rdtype, s)
    loss_shape = rest if reduction == "none" else ()
    loss, _ = _arrays.allocate(xd, loss_shape, c_strides(loss_shape, rdtype.itemsize), rdtype, s)
    ld = _arrays.describe(loss, "loss")

    def staged(d, dtype, strides, into=None):
        if d.dtype == dtype and d.strides == strides:  # dense in that order: read in place
            return _arrays.flat_view(d.ptr, d.size, dtype, d.obj)
        buf = into if into is not None else _arrays.temporary((d.size,), dtype, s)
        _memory.copy(d, buf, strides, s)
        return buf

    if rows and n:
        x_flat = staged(xd, rdtype, row_strides, gflat)
        if o.probabilities:
            t_flat = staged(td, rdtype, row_strides)
        else:
            t_flat = staged(td, np.dtype(np.int64), c_strides(rest, 8))
        w_flat = None if wd is None else staged(wd, np.dtype(np.float64), (8,))
        if reduction != "mean":
            mode = K.FACTOR_ONE
        else:
            mode = K.FACTOR_ROWS if o.probabilities else K.FACTOR_WEIGHTS
        losses = _arrays.temporary((rows,), np.dtype(np.float64), s)
        factor = _arrays.temporary((2,), np.dtype(np.float64), s)
        total = None
        if reduction != "none":
            total = _arrays.flat_view(ld.ptr, 1, rdtype, loss)
        _launch.run_cross_entropy(x_flat, t_flat, w_flat, gflat, losses, factor, total, rows, n,
                                  plan.scaling, o.label_smoothing, o.ignore_index, mode, s,
                                  ignoring=o.ignoring)
        if reduction == "none":
            src = _arrays.Described(losses, "numba", rest, c_strides(rest, 8),
                                    np.dtype(np.float64), _arrays.describe(losses, "l").ptr,
                                    True, None)
            _memory.copy(src, _arrays.flat_view(ld.ptr, rows, rdtype, loss), ld.strides, s)
    else:  # no samples or no classes: zeros; a mean over nothing is 0 / 0
        host = np.full(loss_shape, np.nan if reduction == "mean" else 0.0, rdtype)
        if host.size:
            _arrays.flat_view(ld.ptr, host.size, rdtype, loss).copy_to_device(
                host.reshape(-1), stream=s)
        if gflat is not None and size:
            gflat.copy_to_device(np.zeros(size, rdtype), stream=s)
    return (loss, grad) if o.return_grad else loss
