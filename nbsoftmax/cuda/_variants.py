"""Every compiled kernel variant: its source, signature and launch bounds, in one table.

A variant is named by a key tuple whose first item is its family:

======================================  ==================================================
``("warp", op, items, dtype)``           ``_kernels_warp``, ``items`` in 1..32
``("block", op, items, dtype)``          ``_kernels_block`` FUSED (a row per block)
``("split", op, phase, items, dtype)``   ``_kernels_block`` STATS / APPLY (``phase``)
``("merge", backward)``                  ``_kernels_block.merge_partials``
``("columns", op, dtype)``               ``_kernels_columns``
``("lse", kind, dtype, w, m, s)``        ``_kernels_lse`` (forward: weighted, masked, signed;
                                         backward: masked)
``("scaled", op, dtype, masked)``        ``_kernels_scaled`` (``temperature=`` / ``where=``)
``("xent", part, dtype, probs, w, g)``   ``_kernels_xent`` (denominator, rows, total)
``("topk", dtype)``                      ``_kernels_topk``
``("copy", src, dst, ndim)``             ``_kernels_copy``
======================================  ==================================================

``op`` is one of ``OPS`` (logsumexp runs in the ``lse`` family only). ``dtype`` is the
storage dtype (float16, float32, float64). ``BOUNDS`` holds the launch bounds of each family: the most threads per block the launcher ever asks of it. ptxas keeps
a kernel's registers within what that many threads may use, so every launch up to the bound
can start on any GPU (sm_70 and newer all have 64K registers per block); the launcher also
reads each compiled kernel's own limit (``_launch``). ``nbsoftmax.cuda.verify`` compiles
``all_keys()`` for chosen architectures and checks the registers, spills and shared memory.
"""

import numpy as np

from . import _ops

# Most threads per block per family, and (for the block kernels) blocks per SM. The
# grid-strided families take any thread count; 512 keeps the float64 temperature= kernels
# (70-76 registers/thread on sm_90 without a bound) and top-k (74) launchable without
# forcing them down to 64 registers, which would spill.
# The FUSED block kernels keep 1024 threads (rows of 1024 x items in registers) at 64
# registers: 50% occupancy at 1024 threads; the split kernels take two 512-thread blocks.
BOUNDS = {
    "warp": (128,),
    "block": (1024, 1),
    "split": (512, 2),
    "merge": (512, 1),
    "lse": (512, 1),  # _kernels_lse.BOUNDS
    "columns": (256, 1),
    "scaled": (512, 1),
    "xent": (512, 1),
    "topk": (512, 1),
    "copy": (256,),
}

OPS = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward")
# the where=/temperature= kernels still have a logsumexp variant
SCALED_OPS = ("softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward")
DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
WARP_ITEMS = (1, 2, 4, 8, 16, 32)
BLOCK_ITEMS = (4, 8, 16)


def items_cap(op, itemsize, max_items=16):
    """Most elements per thread of the block kernels for op on a storage itemsize.

    Register budget of a 1024-thread block: 64 per thread (launch bounds (1024, 1)).
    ptxas -v for sm_90 (CUDA 13.4), spill stores per thread at 4 / 8 / 16 items:
    softmax f32 0/0/104 B, log_softmax f32 0/8/52 B, softmax f64 0/20/164 B,
    softmax_backward f32 0/0/48 B, f64 0/16/420 B; 32 items spilled 450+ B (f32).
    The caps keep spills at a few dozen bytes (L1-resident); longer rows split.
    """
    if itemsize <= 4:
        cap = 8 if op in _ops.BACKWARD else 16
    else:
        cap = 4 if op in _ops.BACKWARD else 8
    return min(cap, max_items)


def bounds(key):
    """Launch bounds of variant key: ``(max threads per block[, min blocks per SM])``."""
    return BOUNDS[key[0]]


def compute_dtype(dtype):
    """Arithmetic dtype of a storage dtype (float16 computes in float32)."""
    return np.float64 if dtype == np.float64 else np.float32


def _types():
    from numba.cuda import types

    return types


def array_type(dtype):
    """The numba type of a 1-D C-contiguous device array of dtype."""
    from numba.cuda.np import numpy_support

    return _types().Array(numpy_support.from_dtype(np.dtype(dtype)), 1, "C")


def source(key):
    """``(python kernel function, numba signature, launch bounds)`` of variant key."""
    t = _types()
    family = key[0]
    f64 = array_type(np.float64)
    if family in ("warp", "block", "columns"):
        op = key[1]
        dtype = key[-1]
        arr = array_type(dtype)
        code = _ops.CODES[op]
        compute = compute_dtype(dtype)
        backward = op in _ops.BACKWARD
        inputs = (arr, arr) if backward else (arr,)
        if family == "warp":
            from . import _kernels_warp as K

            fn = (K.warp_backward if backward else K.warp_forward)(code, key[2], compute)
            sig = t.void(*inputs, arr, t.int64, t.int64, t.int64)
        elif family == "block":
            from . import _kernels_block as K

            fn = (K.block_backward if backward else K.block_forward)(code, key[2], compute)
            sig = t.void(*inputs, arr, t.int64, t.int64)
        else:
            from . import _kernels_columns as K

            fn = (K.columns_backward if backward else K.columns_forward)(code, compute)
            sig = t.void(*inputs, arr, t.int64, t.int64, t.int64)
    elif family == "split":
        from . import _kernels_block as K

        _, op, phase, items, dtype = key
        arr = array_type(dtype)
        inputs = (arr, arr) if op in _ops.BACKWARD else (arr,)
        code = _ops.CODES[op]
        if phase == "stats":
            fn = K.split_stats(code, items, compute_dtype(dtype))
            sig = t.void(*inputs, f64, *(t.int64,) * 4)
        else:
            fn = K.split_apply(code, items, compute_dtype(dtype))
            sig = t.void(*inputs, arr, f64, *(t.int64,) * 4)
    elif family == "merge":
        from ._kernels_block import merge_partials

        fn = merge_partials(bool(key[1]))
        sig = t.void(f64, t.int64, t.int64)
    elif family == "lse":
        from . import _kernels_lse as K

        _, kind, dtype, weighted, masked, signed = key
        arr = array_type(dtype)
        mask = array_type(np.uint8)
        compute = compute_dtype(dtype)
        if kind == "forward":
            fn = K.lse_forward(compute, weighted, masked, signed)
            sig = t.void(arr, arr, mask, arr, arr, t.int64, t.int64, t.int64)
        else:
            fn = K.lse_backward(compute, masked)
            sig = t.void(arr, arr, mask, arr, t.int64, t.int64, t.int64)
    elif family == "scaled":
        from . import _kernels_scaled as K

        _, op, dtype, masked = key
        arr = array_type(dtype)
        mask = array_type(np.uint8)
        code = _ops.CODES[op]
        if op in _ops.BACKWARD:
            fn = K.scaled_backward(code, compute_dtype(dtype), masked)
            args = (arr, arr, mask, arr)
        else:
            fn = K.scaled_forward(code, compute_dtype(dtype), masked)
            args = (arr, mask, arr)
        # scaling (sp, ih, il, post): nbsoftmax.dispatch.temperature.kernel_scaling
        sig = t.void(*args, t.UniTuple(t.float64, 4), t.int64, t.int64, t.int64)
    elif family == "xent":
        from . import _kernels_xent as K

        _, part, dtype, probs, weighted, with_grad = key
        arr = array_type(dtype)
        index = array_type(np.int64)
        if part == "denominator":
            fn = K.denominator(weighted)
            sig = t.void(index, f64, f64, t.int64, t.int64, t.int64, t.int64)
        elif part == "rows":
            fn = K.rows_kernel(compute_dtype(dtype), probs, weighted, with_grad)
            sig = t.void(arr, arr if probs else index, f64, f64, f64, arr, t.int64, t.int64,
                         t.UniTuple(t.float64, 4), t.float64, t.UniTuple(t.int64, 2))
        else:
            fn = K.total_kernel()
            sig = t.void(f64, f64, arr, t.int64)
    elif family == "topk":
        from ._kernels_topk import topk_kernel

        dtype = key[1]
        arr = array_type(dtype)
        fn = topk_kernel(compute_dtype(dtype))
        sig = t.void(arr, arr, array_type(np.int64), t.int64, t.int64, t.int64)
    elif family == "copy":
        from ._kernels_copy import strided_copy

        _, src, dst, ndim = key
        tup = t.UniTuple(t.int64, ndim)
        fn = strided_copy(ndim)
        sig = t.void(array_type(src), array_type(dst), tup, tup, tup, t.int64, t.int64,
                     t.int64)
    else:
        raise ValueError(f"unknown kernel family {family!r} in variant key {key!r}")
    return fn, sig, bounds(key)


# Source dtypes the strided copy may stage from: any real dtype a device array may have
# (cast to the result dtype), bool masks (to uint8) and integer targets (to int64).
COPY_SOURCES = tuple(np.dtype(c) for c in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                           "f2", "f4", "f8"))
# ndim is unbounded (one variant per rank): every dtype pair is checked at rank 2 and the
# float copies at the other ranks used in practice; the copy's bound of 256 threads fits any
# register count anyway (255 registers x 256 threads = the 64K register file).
COPY_NDIMS = (1, 3, 4, 8)


def all_keys():
    """Every variant key the launcher can select (the copy kernels at COPY_NDIMS)."""
    keys = []
    for dtype in DTYPES:
        for op in OPS:
            keys += [("warp", op, items, dtype) for items in WARP_ITEMS]
            keys += [("block", op, items, dtype) for items in BLOCK_ITEMS
                     if items <= items_cap(op, dtype.itemsize)]
            # the split path always runs at the cap (the simulator tests' smaller caps too)
            keys += [("split", op, phase, items, dtype) for phase in ("stats", "apply")
                     for items in BLOCK_ITEMS if items <= items_cap(op, dtype.itemsize)]
            keys.append(("columns", op, dtype))
        for op in SCALED_OPS:
            keys += [("scaled", op, dtype, masked) for masked in (False, True)]
        for masked in (False, True):
            keys += [("lse", "forward", dtype, weighted, masked, signed)
                     for weighted in (False, True) for signed in (False, True)]
            keys.append(("lse", "backward", dtype, False, masked, False))
        for probs in (False, True):
            for weighted in (False, True):
                for with_grad in (False, True):
                    keys.append(("xent", "rows", dtype, probs, weighted, with_grad))
        keys.append(("xent", "total", dtype, False, False, False))
        keys.append(("topk", dtype))
    keys += [("merge", False), ("merge", True)]
    i8 = np.dtype(np.int64)
    keys += [("xent", "denominator", i8, False, w, False) for w in (False, True)]
    keys += [("copy", src, dst, 2) for src in COPY_SOURCES for dst in DTYPES]
    keys += [("copy", np.dtype(np.bool_), np.dtype(np.uint8), 2), ("copy", i8, i8, 2)]
    keys += [("copy", src, i8, 2) for src in COPY_SOURCES if src.kind in "iu" and src != i8]
    keys += [("copy", d, d, ndim) for ndim in COPY_NDIMS for d in DTYPES[1:]]
    return keys


def name(key):
    """A short printable name of variant key."""
    return ":".join(str(np.dtype(k).name) if isinstance(k, np.dtype) else
                    (str(int(k)) if isinstance(k, bool) else str(k)) for k in key)


def items_of(key):
    """Elements a thread holds in registers (the unrolled main loop), or None for loops."""
    if key[0] in ("warp", "block"):
        return key[2]
    return key[3] if key[0] == "split" else None
