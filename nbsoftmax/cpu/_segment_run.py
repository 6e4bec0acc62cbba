"""The compiled segment drivers of ``_segment``: explicit signatures, the on-disk cache, and
the backend's table of built kernels (what ``nbsoftmax.precompile`` and the tests read).

Three drivers (``forward``: softmax and log_softmax; ``logsumexp``; ``backward``: both
gradients), each serial and parallel, per compute dtype (float16 values compute in float32).
The serial and parallel twins are separate functions because a cache entry is keyed by the
function (its name and line) and the signature, not by the ``parallel`` option: one source
compiled both ways would serve one machine code for the other.
"""

import numba
import numpy as np
from numba import types

from .. import _threading
from . import _cache, _segment
from ._registry import _compiled

KINDS = ("forward", "logsumexp", "backward")
# The public segment functions: the driver each runs.
OPS = {"segment_softmax": "forward", "segment_log_softmax": "forward",
       "segment_logsumexp": "logsumexp", "segment_softmax_backward": "backward",
       "segment_log_softmax_backward": "backward"}
_lock = _threading.ForkSafeLock(compile_guard=True)  # guards compiles: see _threading


def compute_dtype(dtype):
    """The dtype the segment kernels compute a result dtype (or storage dtype) in: float16,
    stored as uint16 by the dense kernels, computes in float32."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype in (np.float16, np.uint16) else dtype


def key(kind, dtype, parallel):
    """The driver's key in the backend's table (``cpu._compiled``)."""
    return ("segment", kind, compute_dtype(dtype), parallel)


def kernel(kind, dtype, parallel):
    """The compiled segment driver ``kind`` for (the compute dtype of) dtype."""
    k = key(kind, dtype, parallel)
    built = _compiled.get(k)
    if built is None:
        with _lock:
            built = _compiled.get(k)
            if built is None:
                source = getattr(_segment, f"{kind}_{'parallel' if parallel else 'serial'}")
                st = types.float32 if k[2] == np.float32 else types.float64
                ro = types.Array(st, 2, "C", readonly=True)
                rw = types.Array(st, 2, "C")
                idx = types.Array(types.int64, 1, "C", readonly=True)
                common = (idx, idx, types.int64, types.boolean, rw)
                if kind == "forward":
                    sig = types.void(types.boolean, ro, *common)
                elif kind == "logsumexp":
                    sig = types.void(ro, *common)
                else:
                    sig = types.void(types.boolean, ro, ro, *common)
                options = {o: source.targetoptions[o] for o in ("parallel",)
                           if o in source.targetoptions}
                built = _cache.attach(numba.njit(error_model="numpy", **options)(
                    source.py_func))
                built.compile(sig)
                built.disable_compile()
                _compiled[k] = built
    return built


# ------------------------------------------------------ where= and temperature= staging
# Masked entries take part as -inf (forward) or 0 (gradients) and come out as 0 (log: -inf):
# the dense where= conventions (a fully masked segment: 0, log -inf). The drivers then run
# in place on the staged copy. A temperature T is applied to the difference from the
# segment's max, (x - m) / T, never to x alone: x / T rounded at x's own magnitude would
# break shift invariance (x + 1e6 in float32). The difference is taken in float64 (exact for
# float32 values) and rounded once to the compute type. One NumPy pass each: they serve only
# where= and temperature= calls, and compiled twins would add kernels to every warmup.


def stage_masked(src, mask, fill, out):
    """out = src where mask, fill elsewhere (same shapes; src cast to out's dtype)."""
    out.fill(fill)
    np.copyto(out, src, where=mask, casting="unsafe")


def stage_temperature(src, mask, offsets, inv_t, out):
    """(N, C) out = (src - segment max) * inv_t over the entries where mask (None: all),
    -inf elsewhere; the max is NaN-propagating, and a max that is not finite counts as 0
    (NaN and +inf segments reach the drivers as NaN; all -inf stays -inf)."""
    x64 = np.asarray(src, np.float64)
    if mask is not None:
        x64 = np.where(mask, x64, -np.inf)
    lengths = np.diff(offsets)
    starts = offsets[:-1][lengths > 0]
    if starts.size:
        m = np.maximum.reduceat(x64, starts, axis=0)
        m[~np.isfinite(m)] = 0.0
        with np.errstate(invalid="ignore"):
            np.copyto(out, (x64 - np.repeat(m, lengths[lengths > 0], axis=0)) * inv_t,
                      casting="unsafe")
    if mask is not None:
        np.copyto(out, -np.inf, where=~mask)


def finish_masked(out, mask, scale, fill):
    """out *= scale (in out's dtype) where mask (None: everywhere), fill elsewhere."""
    if scale != 1.0:
        np.multiply(out, out.dtype.type(scale), out=out)
    if mask is not None:
        np.copyto(out, fill, where=~mask)
