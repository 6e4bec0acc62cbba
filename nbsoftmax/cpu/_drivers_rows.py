"""Row drivers: one softmax slice per row of ``(rows, n)`` arrays (``*_rows_*``,
``*_block_*``, ``*_rows_general_*``) and blocks of short rows (``*_short_*``, see ``_short``).
Serial and ``prange`` twins written out (see ``_drivers``)."""

from numba import njit, prange

from . import _short as Sh
from . import _slices as S
from ._math import store, to_compute

# ---------------------------------------------------------------------------- rows


@njit(error_model="numpy")
def softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_slice(x, out, i)


@njit(error_model="numpy")
def log_softmax_rows_serial(x, out):
    for i in range(x.shape[0]):
        S.log_softmax_slice(x, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        S.log_softmax_slice(x, out, i)


# Rows of one summing block (_slices.softmax_one_block): their own drivers, so that each
# compiles only its path (cold parallel compile 3.0 s, against 4.1 s for one driver holding
# both). Not for log_softmax: Numba applies a function's fast-math flags to every float
# instruction in it, and 'reassoc' turned (x - m) - log_s into x - (m + log_s) (700x the
# error bound near 1e4); its kernels keep the reductions in separate functions.


@njit(error_model="numpy")
def softmax_block_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_one_block(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_block_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_one_block(x, out, i)


@njit(error_model="numpy")
def softmax_rows_general_serial(x, out):
    for i in range(x.shape[0]):
        S.softmax_slice_general(x, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_rows_general_parallel(x, out):
    for i in prange(x.shape[0]):
        S.softmax_slice_general(x, out, i)


@njit(error_model="numpy")
def log_softmax_rows_general_serial(x, out):
    for i in range(x.shape[0]):
        S.log_softmax_slice_general(x, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_rows_general_parallel(x, out):
    for i in prange(x.shape[0]):
        S.log_softmax_slice_general(x, out, i)


@njit(error_model="numpy")
def logsumexp_rows_serial(x, out):
    for i in range(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(parallel=True, error_model="numpy")
def logsumexp_rows_parallel(x, out):
    for i in prange(x.shape[0]):
        store(out, i, to_compute(out, S.logsumexp_slice(x, i)))


@njit(error_model="numpy")
def softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(parallel=True, error_model="numpy")
def softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.softmax_backward_slice(g, y, out, i)


@njit(error_model="numpy")
def log_softmax_backward_rows_serial(g, y, out):
    for i in range(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_rows_parallel(g, y, out):
    for i in prange(g.shape[0]):
        S.log_softmax_backward_slice(g, y, out, i)


# ------------------------------------------------------------------ short rows in blocks


@njit(error_model="numpy")
def softmax_short_serial(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def softmax_short_parallel(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def log_softmax_short_serial(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.log_softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def log_softmax_short_parallel(x, out):
    rows, n = x.shape
    rb = Sh.rows_per_block(n)
    xf, of = x.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.log_softmax_block(xf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def softmax_backward_short_serial(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def softmax_backward_short_parallel(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(error_model="numpy")
def log_softmax_backward_short_serial(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in range((rows + rb - 1) // rb):
        Sh.log_softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))


@njit(parallel=True, error_model="numpy")
def log_softmax_backward_short_parallel(g, y, out):
    rows, n = g.shape
    rb = Sh.rows_per_block(n)
    gf, yf, of = g.ravel(), y.ravel(), out.ravel()
    for b in prange((rows + rb - 1) // rb):
        Sh.log_softmax_backward_block(gf, yf, of, n, b * rb, min(b * rb + rb, rows))
