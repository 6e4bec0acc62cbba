"""Every public CPU function called with every option, on shapes that reach every kernel.

Used by tests/test_warmup.py: in a fresh process after ``nbsoftmax warmup`` nothing here may
compile, and against stand-in kernels it must ask for exactly the variants warmup compiles.
The shapes pick every kernel of ``nbsoftmax.cpu.run`` (two threads): short rows (10
columns), one-block rows (100 in float64, 300 in float32), long rows (1000), in place (the
general-row kernels), one row of 1.2 MB in float16 (split among threads), a non-last axis
(columns); each small (serial) and large enough for the parallel kernels.
"""

import numpy as np

import nbsoftmax

# (rows, columns): serial then parallel for short, one-block (float64, float32) and long rows;
# one split row.
ROW_SHAPES = ((4, 10), (4096, 10), (4, 100), (400, 100), (4, 300), (200, 300), (4, 1000),
              (64, 1000), (1, 600_000))
# (shape, axis) for the column kernels: serial and parallel.
COLUMN_CASES = (((100, 50), 0), ((1000, 100), 0), ((8, 100, 50), 1))


def _x(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


def _mask(shape, seed=1):
    return np.random.default_rng(seed).random(shape) < 0.7


def _forward(dtype):
    for shape in ROW_SHAPES:
        x = _x(shape, dtype)
        m = _mask(shape)
        for fn in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.softmin):
            fn(x)
            fn(x, where=m)
            fn(x, temperature=2.0)
            fn(x, where=m, temperature=0.5)
            fn(x.copy(), out=None)
            y = x.copy()
            fn(y, out=y)  # in place
        nbsoftmax.logsumexp(x)
        nbsoftmax.logsumexp(x, where=m)
        nbsoftmax.logsumexp(x, keepdims=True)
        for layer in (nbsoftmax.Softmax(), nbsoftmax.LogSoftmax()):
            layer(x)
    for shape, axis in COLUMN_CASES:
        x = _x(shape, dtype)
        m = _mask(shape)
        for fn in (nbsoftmax.softmax, nbsoftmax.log_softmax, nbsoftmax.softmin):
            fn(x, axis=axis)
            fn(x, axis=axis, where=m, temperature=2.0)
        nbsoftmax.logsumexp(x, axis=axis)
        nbsoftmax.logsumexp(x, axis=axis, where=m)


def _backward(dtype):
    for shape, axis in [(s, -1) for s in ROW_SHAPES] + list(COLUMN_CASES):
        x = _x(shape, dtype)
        g = _x(shape, dtype, seed=2)
        m = _mask(shape)
        for forward, backward in ((nbsoftmax.softmax, nbsoftmax.softmax_backward),
                                  (nbsoftmax.log_softmax, nbsoftmax.log_softmax_backward)):
            y = forward(x, axis=axis)
            backward(g, y, axis=axis)
            backward(g, forward(x, axis=axis, where=m), axis=axis, where=m)
            backward(g, forward(x, axis=axis, temperature=2.0), axis=axis, temperature=2.0)
            backward(g, forward(x, axis=axis, where=m, temperature=2.0), axis=axis, where=m,
                     temperature=2.0)


def _cross_entropy(dtype):
    for rows, classes in ((4, 10), (64, 1000)):
        x = _x((rows, classes), dtype)
        index = np.random.default_rng(3).integers(0, classes, rows)
        probs = nbsoftmax.softmax(_x((rows, classes), dtype, seed=4))
        weight = np.linspace(0.5, 1.5, classes)
        for target in (index, probs):
            for w in (None, weight):
                for reduction in ("mean", "sum", "none"):
                    nbsoftmax.cross_entropy(x, target, weight=w, reduction=reduction)
                    nbsoftmax.cross_entropy(x, target, weight=w, reduction=reduction,
                                            return_grad=True)
                nbsoftmax.cross_entropy(x, target, weight=w, temperature=2.0)
                nbsoftmax.cross_entropy(x, target, weight=w, label_smoothing=0.1,
                                        temperature=2.0, return_grad=True)
        nbsoftmax.cross_entropy(x.T, index, axis=0, return_grad=True)


def _topk(dtype):
    for shape in ((4, 10), (64, 1000)):
        x = _x(shape, dtype)
        nbsoftmax.softmax_topk(x, 3)
        nbsoftmax.softmax_topk(x.T, 2, axis=0)


def _logsumexp_extras(dtype):
    """logsumexp's b= and return_sign= (with and without where=) and logsumexp_backward."""
    for shape in ((4, 300), (64, 1000)):
        x = _x(shape, dtype)
        b = _x(shape, dtype, seed=5)
        m = _mask(shape)
        for kwargs in ({"b": b}, {"return_sign": True}, {"b": b, "return_sign": True}):
            nbsoftmax.logsumexp(x, **kwargs)
            nbsoftmax.logsumexp(x, where=m, **kwargs)
        g = _x(shape[:1], dtype, seed=6)
        nbsoftmax.logsumexp_backward(g, x)
        nbsoftmax.logsumexp_backward(g, x, where=m)


def _segments(dtype):
    """The segment functions (nbsoftmax.segment) with each option: 20 entries in 7 segments
    (serial), then 40,000 in 4,000 segments (parallel), 1-D and 2-D (columns)."""
    from nbsoftmax import segment

    for offsets in (np.array([0, 3, 3, 4, 9, 9, 17, 20]), np.arange(0, 40_001, 10)):
        n = int(offsets[-1])
        ids = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))[::-1].copy()
        for shape in ((n,), (n, 3)):
            x = _x(shape, dtype)
            g = _x(shape, dtype, seed=2)
            m = _mask(shape)
            for forward, backward in (
                    (segment.segment_softmax, segment.segment_softmax_backward),
                    (segment.segment_log_softmax, segment.segment_log_softmax_backward)):
                for kw in ({}, {"where": m}, {"temperature": 2.0}):
                    y = forward(x, offsets, **kw)
                    backward(g, y, offsets, **kw)
                forward(x, segment_ids=ids)
            segment.segment_logsumexp(x, offsets)
            segment.segment_logsumexp(x, offsets, where=m)


def call_everything(dtype):
    """Call every public function with every option on float arrays of dtype."""
    _forward(dtype)
    _backward(dtype)
    _cross_entropy(dtype)
    _topk(dtype)
    _logsumexp_extras(dtype)
    _segments(dtype)
