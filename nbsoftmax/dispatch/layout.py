"""How an N-d array with a set of softmax axes is seen as a C-contiguous (outer, n, inner) array.

A ``Layout`` is made from one array's shape and strides. It drops length-1 axes, reverses
axes with negative strides and orders the rest by decreasing stride; if the softmax axes
are then adjacent, every array laid out the same way in memory is a C-contiguous
``(outer, n, inner)`` view, with ``n`` the joint length of the softmax axes. This is how C-
and F-ordered arrays, transposes, reversed views and any axis or tuple of adjacent axes
reach the kernels without a copy: a non-last axis becomes ``inner > 1``, which the column
kernels stream without transposing.

``allocate`` makes a new array in that same layout, so a result mirrors its input's memory
order (as ``np.empty_like(order='K')`` does, reversed axes included).
"""

import math

import numpy as np


def _c_strides(shape, order, itemsize):
    strides = [0] * len(shape)
    step = itemsize
    for ax in reversed(order):
        strides[ax] = step
        step *= shape[ax]
    return strides


def strides_in_order(shape, order, itemsize):
    """Dense strides of shape with its axes laid out in ``order`` (outermost first)."""
    return _c_strides(shape, order, itemsize)


class Layout:
    __slots__ = ("shape", "axes", "kept", "flipped", "order", "ok", "outer", "n", "inner", "lo", "hi")

    def __init__(self, shape, strides, axes):
        self.shape = tuple(shape)
        self.axes = frozenset(axes)
        self.kept = [a for a in range(len(shape)) if shape[a] != 1]
        self.flipped = frozenset(a for a in self.kept if strides[a] < 0)
        self.order = sorted(self.kept, key=lambda a: -abs(strides[a]))
        reduced = [i for i, a in enumerate(self.order) if a in self.axes]
        if reduced:
            self.lo, self.hi = reduced[0], reduced[-1] + 1
        else:  # every softmax axis has length 1
            self.lo = self.hi = len(self.order)
        self.ok = self.hi - self.lo == len(reduced)
        self.outer = math.prod(shape[a] for a in self.order[: self.lo])
        self.n = math.prod(shape[a] for a in self.order[self.lo : self.hi])
        self.inner = math.prod(shape[a] for a in self.order[self.hi :])

    @classmethod
    def default(cls, shape, axes):
        """C order when the softmax axes are adjacent in it, else the softmax axes moved last."""
        layout = cls(shape, _c_strides(shape, range(len(shape)), 1), axes)
        if layout.ok:
            return layout
        order = [a for a in range(len(shape)) if a not in axes] + sorted(axes)
        return cls(shape, _c_strides(shape, order, 1), axes)

    @classmethod
    def rows(cls, shape, axes):
        """C order with the softmax axes moved last: a (rows, n) view, inner == 1."""
        order = [a for a in range(len(shape)) if a not in axes] + sorted(axes)
        return cls(shape, _c_strides(shape, order, 1), axes)

    def view3(self, arr):
        """arr as a C-contiguous (outer, n, inner) view, or None if its memory is laid out otherwise."""
        index = tuple(
            0 if size == 1 else slice(None, None, -1) if a in self.flipped else slice(None)
            for a, size in enumerate(self.shape)
        )
        position = {a: i for i, a in enumerate(self.kept)}
        # The Ellipsis keeps the result a view when every axis is indexed by an int (all
        # lengths 1): arr[0, 0] alone is a scalar copy, which the kernels would write into.
        view = arr[index + (...,)].transpose([position[a] for a in self.order])
        if not view.flags.c_contiguous:
            return None
        return view.reshape(self.outer, self.n, self.inner)

    def _unview(self, buf, axes_present):
        """Inverse of view3 for a buffer holding the axes axes_present in self.order's order."""
        present = [a for a in self.order if a in axes_present]
        buf = buf.transpose([present.index(a) for a in sorted(present)])
        flips = tuple(
            slice(None, None, -1) if a in self.flipped else slice(None) for a in sorted(present)
        )
        if flips:  # (indexing a 0-d array with () would give a scalar, not a view)
            buf = buf[flips]
        logical = sorted(axes_present)
        return np.expand_dims(buf, tuple(logical.index(a) for a in logical if a not in present))

    def allocate(self, dtype):
        """A new array of the full shape whose view3 exists."""
        buf = np.empty([self.shape[a] for a in self.order], dtype)
        return self._unview(buf, range(len(self.shape)))

    def allocate_reduced(self, dtype):
        """A new array of the shape without the softmax axes, and its (outer, inner) view."""
        rest = [a for a in range(len(self.shape)) if a not in self.axes]
        buf = np.empty(self.outer * self.inner, dtype)
        kept_rest = [a for a in self.order if a not in self.axes]
        logical = self._unview(buf.reshape([self.shape[a] for a in kept_rest]), rest)
        return logical, buf.reshape(self.outer, self.inner)
