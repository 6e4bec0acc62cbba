"""Drivers of the options: temperature= and where= rows (``_scaled``), logsumexp with
b=/return_sign= and its gradient (``_lse``), cross-entropy (``_xent``) and softmax top-k
(``_topk``). Serial and ``prange`` twins written out (see ``_drivers``)."""

from numba import njit, prange

from . import _lse as L
from . import _scaled as Sc
from . import _topk as T
from . import _xent as X

# ------------------------------------------------- rows with a temperature and a mask
# (x * scale, entries where mask; mask None for temperature alone: see _scaled). Rows only:
# the dispatcher brings the softmax axes last in memory for these calls.


@njit(error_model="numpy")
def softmax_scaled_serial(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        Sc.softmax_row(x, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def softmax_scaled_parallel(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        Sc.softmax_row(x, mask, out, i, sc)


@njit(error_model="numpy")
def log_softmax_scaled_serial(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        Sc.log_softmax_row(x, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def log_softmax_scaled_parallel(x, mask, scale, out):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        Sc.log_softmax_row(x, mask, out, i, sc)


# logsumexp takes no temperature: its where= drivers run _lse's masked row (the log1p form)
# and ignore scale, which the dispatcher passes as 1.


@njit(error_model="numpy")
def logsumexp_scaled_serial(x, mask, scale, out):
    for i in range(x.shape[0]):
        L.store_lse(x, None, mask, i, out, None)


@njit(parallel=True, error_model="numpy")
def logsumexp_scaled_parallel(x, mask, scale, out):
    for i in prange(x.shape[0]):
        L.store_lse(x, None, mask, i, out, None)


# ------------------------------------------- logsumexp with b= / return_sign=, its gradient
# (x, b or None, mask or None, out, sign or None) and (g, x, mask or None, out): see _lse.


@njit(error_model="numpy")
def lse_rows_serial(x, b, mask, out, sign):
    for i in range(x.shape[0]):
        L.store_lse(x, b, mask, i, out, sign)


@njit(parallel=True, error_model="numpy")
def lse_rows_parallel(x, b, mask, out, sign):
    for i in prange(x.shape[0]):
        L.store_lse(x, b, mask, i, out, sign)


@njit(error_model="numpy")
def lse_backward_rows_serial(g, x, mask, out):
    for i in range(x.shape[0]):
        L.lse_backward_row(g, x, mask, out, i)


@njit(parallel=True, error_model="numpy")
def lse_backward_rows_parallel(g, x, mask, out):
    for i in prange(x.shape[0]):
        L.lse_backward_row(g, x, mask, out, i)


@njit(error_model="numpy")
def softmax_backward_scaled_serial(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in range(g.shape[0]):
        Sc.softmax_backward_row(g, y, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def softmax_backward_scaled_parallel(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in prange(g.shape[0]):
        Sc.softmax_backward_row(g, y, mask, out, i, sc)


@njit(error_model="numpy")
def log_softmax_backward_scaled_serial(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in range(g.shape[0]):
        Sc.log_softmax_backward_row(g, y, mask, out, i, sc)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_scaled_parallel(g, y, mask, scale, out):
    sc = Sc.compute_scaling(g, scale)
    for i in prange(g.shape[0]):
        Sc.log_softmax_backward_row(g, y, mask, out, i, sc)


# ---------------------------------------------------------------- cross-entropy rows
# One loss per row into loss (float64); grad (rows, C) or None for the loss alone; weight
# (C,) float64 or None. See _xent.


@njit(error_model="numpy")
def xent_index_serial(x, target, weight, wsum, scale, eps, ignore_index, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        loss[i] = X.index_row(x, target, weight, wsum, i, sc, eps, ignore_index, r, grad)


@njit(parallel=True, error_model="numpy")
def xent_index_parallel(x, target, weight, wsum, scale, eps, ignore_index, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        loss[i] = X.index_row(x, target, weight, wsum, i, sc, eps, ignore_index, r, grad)


@njit(error_model="numpy")
def xent_probs_serial(x, target, weight, scale, eps, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in range(x.shape[0]):
        loss[i] = X.probs_row(x, target, weight, i, sc, eps, r, grad)


@njit(parallel=True, error_model="numpy")
def xent_probs_parallel(x, target, weight, scale, eps, r, loss, grad):
    sc = Sc.compute_scaling(x, scale)
    for i in prange(x.shape[0]):
        loss[i] = X.probs_row(x, target, weight, i, sc, eps, r, grad)


# ------------------------------------------------------------------- softmax top-k rows


@njit(error_model="numpy")
def topk_rows_serial(x, k, probs, idx):
    for i in range(x.shape[0]):
        T.topk_row(x, i, k, probs, idx)


@njit(parallel=True, error_model="numpy")
def topk_rows_parallel(x, k, probs, idx):
    for i in prange(x.shape[0]):
        T.topk_row(x, i, k, probs, idx)
