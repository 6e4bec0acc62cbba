"""The dtype rules: which result dtype an input gets, and how it is stored for the kernels.

float32 -> float32 and float64 -> float64; float16 -> float16 computed in float32 (the kernels
see its uint16 bit pattern); bool and integers -> float64, as in SciPy. ``dtype=`` casts the
input first and fixes the result dtype, as torch's ``dtype`` argument does.
"""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_ACCEPTED = "bool, integer, float16, float32 or float64"


def result_dtype(dtype, name="x"):
    """The result dtype for input of dtype, or TypeError for unsupported kinds."""
    native = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
    if native in FLOAT_DTYPES:
        return native
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    raise TypeError(f"{name} has unsupported dtype {dtype}; expected {_ACCEPTED} input")


def requested_dtype(dtype):
    """Validate the dtype= argument."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype={dtype!r} is not a dtype; expected float16, float32 or float64") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype={dt} is not supported; expected float16, float32 or float64")
    return dt


def storage_view(arr):
    """The array the kernels read and write: float16 as its uint16 bits, others as they are."""
    return arr.view(np.uint16) if arr.dtype == np.float16 else arr
