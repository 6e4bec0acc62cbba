"""Checks of the scalar and keyword arguments of the public functions, one message each.

Every message names the argument, what it was and what was expected. The array arguments'
own checks (axis, dtype, out, where) stay in ``_dispatch``; what lives here is about the
*kind* of argument a caller passed: a torch keyword name (``dim=``), ``None`` for an array,
a string where a number or a bool was meant, a numpy masked array.
"""

import inspect
import math
import sys

import numpy as np

# torch's names for the arguments that nbsoftmax (like NumPy and SciPy) names otherwise.
_TORCH_NAMES = {"dim": "axis", "keepdim": "keepdims"}


def hide_catch_all(func):
    """Give ``func`` its signature without the trailing ``**unexpected`` catch-all.

    The public functions take ``**unexpected`` only to turn torch's keyword names into a
    message that says which name to use (``unexpected_keywords``); every other keyword they
    do not list still raises TypeError, so the signature without it is the true one (what
    ``help()`` and ``inspect.signature`` show). A catch-all costs ~0 per call, where a
    wrapping function cost 0.1-0.25 us on a 1.5 us call (measured here, noisy machine).
    """
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    func.__signature__ = sig.replace(parameters=params)
    return func


def unexpected_keywords(func_name, unexpected, leading="x, "):
    """The TypeError for keywords that ``func_name`` does not take: Python's own message,
    with the NumPy name to use where torch's name was given (``leading``: the arguments
    before it in the example)."""
    for name in unexpected:
        if name in _TORCH_NAMES:
            ours = _TORCH_NAMES[name]
            return TypeError(
                f"{func_name}() got an unexpected keyword argument {name!r}: nbsoftmax follows "
                f"NumPy and SciPy and names it {ours}= ({func_name}({leading}{ours}=...)) where "
                f"torch says {name}=")
    name = next(iter(unexpected))
    return TypeError(f"{func_name}() got an unexpected keyword argument {name!r}")


def missing_array(name):
    return TypeError(f"{name} must be an array or array_like of real numbers (a numpy.ndarray, "
                     f"a list, a torch CPU tensor, ...), not None")


def is_masked(x):
    """Whether x is a numpy masked array (numpy.ma is not imported for the test otherwise)."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(x, ma.MaskedArray)


def unmasked(x, name):
    """The data of masked array x when no entry is masked; TypeError when one is.

    Decided: masks are not honoured implicitly. Converting drops them silently
    (``np.asarray``), reading them as ``where=`` would work for only some functions (not for
    ``cross_entropy`` or ``softmax_topk``, not for ``out=``) and give a plain array back, so a
    masked array with masked entries is refused with the way to say it explicitly.
    """
    mask = np.ma.getmaskarray(x)
    if not mask.any():
        return np.ma.getdata(x)
    raise TypeError(
        f"{name} is a numpy masked array ({int(mask.sum())} of {mask.size} entries masked); "
        f"nbsoftmax does not read masks implicitly: pass {name}.data and "
        f"where=~np.ma.getmaskarray({name}) (softmax, log_softmax, softmin, logsumexp and the "
        "backward passes take where=)")


def check_bool(value, name):
    """value as a bool: True, False, numpy bools, or the ints 0 and 1 (as NumPy accepts)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, not {value!r}")


def check_real(value, name):
    """value as a float when it is a real number (not a bool, not a string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, not {value!r}")
    return float(value)


REDUCTIONS = ("mean", "sum", "none")


def cross_entropy_options(reduction, label_smoothing, return_grad):
    """(reduction, label_smoothing as a float in [0, 1], return_grad as a bool), checked."""
    if not isinstance(reduction, str):
        raise TypeError(f"reduction must be one of {REDUCTIONS} (a str), not {reduction!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
    eps = check_real(label_smoothing, "label_smoothing")
    if not (0.0 <= eps <= 1.0 and math.isfinite(eps)):
        raise ValueError(f"label_smoothing must be between 0 and 1, not {label_smoothing!r}")
    return reduction, eps, check_bool(return_grad, "return_grad")
