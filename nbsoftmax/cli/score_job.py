"""``nbsoftmax score``: what to compute, checked before anything is read or written.

``Job(args)`` opens INPUT's header (``arrayfile``), checks every option against it and
against OUTPUT, and raises ``ScoreError`` (one line for the user) on the first problem:
nothing has been written then, and no kernel has been loaded.
"""

import math
import os

_SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
               "GB": 10**9, "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
               "GIB": 2**30, "TIB": 2**40}

# Above this a --memory-limit is surely a typo (and int() of it would be meaningless).
_MAX_MEMORY_LIMIT = 2**62


class ScoreError(Exception):
    """A problem with the arguments or files, reported as one line."""


# Set by the command's SIGINT/SIGTERM handler. The KeyboardInterrupt it raises is lost when
# the signal lands in a ctypes callback (Numba's object cache, while kernels compile or load:
# "Exception ignored on calling ctypes callback"); the run checks this flag after loading.
interrupt_seen = [False]


def raise_if_interrupted():
    if interrupt_seen[0]:
        raise KeyboardInterrupt


def parse_size(text):
    """``"1GB"`` -> 10**9, ``"512MiB"`` -> 2**29, ``"1e9"`` -> 10**9 bytes.

    Examples
    --------
    >>> parse_size("512MiB")
    536870912
    """
    s = str(text).strip().upper().replace(" ", "")
    digits = s.rstrip("KMGTIB")
    unit = s[len(digits):]
    try:
        value = float(digits) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        value = None
    if value is None or not math.isfinite(value) or not 1 <= value <= _MAX_MEMORY_LIMIT:
        raise ScoreError(f"--memory-limit {text!r} is not a size; expected e.g. 1GB, 512MB, "
                         "2GiB or a number of bytes, at least 1 byte and finite")
    return int(value)


def size_text(nbytes):
    """``1234567`` -> ``"1.23 MB"``: sizes in messages, in the units of --memory-limit."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.3g} {unit}"
    return f"{nbytes:.0f} bytes"


class Job:
    """What to compute, validated: input, axis, dtypes, device, output kind and paths, memory
    limit."""

    def __init__(self, args):
        from ..dispatch import dtypes as _dtypes
        from .arrayfile import ArrayFile

        self.memory_limit = parse_size(args.memory_limit)
        self.source = ArrayFile.open(args.input, args.key)
        self.op = "log_softmax" if args.log else "softmax"
        self.device = args.device
        try:
            _dtypes.result_dtype(self.source.dtype, "INPUT")
        except TypeError:
            raise ScoreError(f"{self.source.what} has dtype {self.source.dtype}; expected bool, "
                             "integer, float16, float32 or float64 values") from None
        if args.dtype is not None:
            self.dtype = _dtypes.requested_dtype(args.dtype)
        else:
            self.dtype = _dtypes.result_dtype(self.source.dtype)
        ndim = len(self.source.shape)
        if not -max(ndim, 1) <= args.axis < max(ndim, 1):  # (a 0-d input takes 0 or -1)
            raise ScoreError(f"--axis {args.axis} is out of range for {self.source.what} of "
                             f"shape {self.source.shape}; expected -{max(ndim, 1)} to "
                             f"{max(ndim, 1) - 1}")
        self.axis = axis = args.axis % ndim if ndim else 0
        self.memory_shape = self.source.memory_shape or (1,)
        self.memory_axis = self.source.memory_axis(axis) if ndim else 0
        n = self.memory_shape[self.memory_axis]
        self.top_k = args.top_k
        if self.top_k is not None:
            if ndim == 0:
                raise ScoreError(f"--top-k needs an array of at least 1 dimension; "
                                 f"{self.source.what} is 0-d")
            if not 1 <= self.top_k <= n:
                raise ScoreError(f"--top-k {self.top_k} must be between 1 and the length {n} "
                                 f"of axis {axis} of {self.source.what}")
        self.output = os.fspath(args.output)
        self._check_output(args.overwrite)
        self.overwrite = args.overwrite
        if self.device == "cuda":
            _require_gpu()

    @property
    def values_name(self):
        return "log_probabilities" if self.op == "log_softmax" else "probabilities"

    def _check_output(self, overwrite):
        out = self.output
        want = ".npz" if self.top_k is not None else ".npy"
        if not out.endswith(want):
            kind = "the top-k archive" if self.top_k is not None else "the full result"
            raise ScoreError(f"OUTPUT {out} should end in {want}: {kind} is written as a "
                             f"{want} file")
        if os.path.isdir(out):
            raise ScoreError(f"OUTPUT {out} is a directory; expected a file name")
        if os.path.lexists(out) and not overwrite:
            raise ScoreError(f"OUTPUT {out} exists; pass --overwrite to replace it")
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent):
            raise ScoreError(f"OUTPUT {out}: directory {parent} does not exist")

    def output_shapes(self):
        """[(member name or None, logical shape, dtype)] of the arrays written."""
        import numpy as np

        shape = self.source.shape
        if self.top_k is None:
            return [(None, shape, self.dtype)]
        cut = tuple(self.top_k if a == self.axis else s for a, s in enumerate(shape))
        return [("indices", cut, np.dtype(np.int64)), (self.values_name, cut, self.dtype)]


def _require_gpu():
    """ScoreError unless a CUDA device (or numba's simulator) can run the kernels."""
    from ..cuda import _runtime

    try:
        _runtime.require()
    except TypeError as exc:
        raise ScoreError(f"--device cuda: {exc}") from None
