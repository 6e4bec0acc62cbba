"""temperature= as the kernels' parameters: ``(x * sign - max) / T`` in one rounding, any T > 0.

The scaled kernels (CPU ``cpu._scaled`` / ``cpu._xent``, GPU ``cuda._kernels_scaled`` /
``cuda._kernels_xent``) compute every exponent from one helper, the same in every pass:
``u = x * sign``, ``m = max(u)`` over the counted entries, then ``v = (u - m) / T``. Dividing
the *difference* keeps results shift-invariant (``x * (1/T) - m`` rounded ``x / T`` at its
own magnitude: row sums of 1.04 at x = 1e6, issue 10 item 1), and ``u - m = 0`` at the max
whatever T is, so a tiny T gives a one-hot row (ties shared) and a huge T a uniform one.

The plain kernels' bounds allow one rounding of ``t = x - max`` (relative error ``6e-8 * |t|``
in float32, about half an ulp); so ``v`` must be rounded once too, not once for the
difference and once for the division. Per compute type:

* float32 (and float16 storage): ``v = float32((float64(u) - float64(m)) * (1 / T))`` with
  ``1 / T`` in float64. The difference of two float32 is exact in float64 (or within 2**-53),
  so ``v`` is rounded once, to float32. float64's range holds every ``(u - m) / T`` that
  can matter: ``1 / T`` is capped at 2**300 (T under 2**-300, subnormal T included), where
  every nonzero difference (>= 2**-149) already gives ``|v| >= 2**151``, past float32's range,
  exactly as the uncapped value would.
* float64: ``d = u - m`` with its exact rounding error ``e`` (TwoSum), times ``1 / T`` as an
  unevaluated sum ``ih + il`` of two float64: ``v = fma(d, ih, fma(d, il, e * ih)) * post``,
  one rounding of the exact ``(u - m) / T`` up to 2**-100 relative. T is split as
  ``Tm * 2**e`` (``Tm`` in [1, 2)) so that every factor stays in range: for T >= 1 the input
  is scaled first by ``pre = 2**-(e + 1)`` (exact: ``u - m`` cannot overflow then, where
  ``(x - m) / T`` is finite), ``ih + il = 2 / Tm``; for T < 1, ``ih + il = 2**j / Tm`` with
  ``j <= 1022`` and ``post = 2**(k - j) <= 2**52`` (k = -e), so a subnormal T neither
  overflows ``1 / T`` nor loses its bits.

The backward passes scale their gradient by ``1 / T`` with the same parameters (float32 in
float64; float64 as ``((w * pre) * ih) * post``): no spurious overflow for tiny T either.

``kernel_scaling`` returns the sign alone (a float) when there is no temperature: the kernels
then take their temperature-free variant, ``v = u - m``, as fast as before (where=, softmin).
"""

import math
from fractions import Fraction

import numpy as np

# 1 / T is capped here for float32 compute (see above): 2**300 * 2**-149 > 2**128.
_F32_INV_CAP = 2.0**300


def check_temperature(temperature):
    """The temperature as a positive finite float, or None; TypeError/ValueError otherwise."""
    if temperature is None:
        return None
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(
            temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a positive real number, not {temperature!r}")
    try:
        t = float(temperature)
    except OverflowError:  # an int beyond float64
        t = math.inf
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"temperature must be positive and finite, not {temperature!r}")
    return t


def _split(t):
    """(Tm, e) with t = Tm * 2**e exactly, Tm in [1, 2)."""
    f, q = math.frexp(t)
    return 2.0 * f, q - 1


def _two_floats(value):
    """(hi, lo): hi = value rounded to float64, lo = the rest rounded (value a Fraction)."""
    hi = float(value)
    return hi, float(value - Fraction(hi))


def kernel_scaling(temperature, sign, compute):
    """The kernels' parameters for ``x * sign / temperature`` in compute dtype ``compute``.

    Returns ``sign`` (a float) when temperature is None, else the float tuple
    ``(sp, ih, il, post)`` described in the module docstring: ``sp`` (sign times the
    pre-scale) and ``post`` exact powers of two, ``ih + il`` the (scaled) inverse of T.
    """
    t = check_temperature(temperature)
    sign = float(sign)
    if t is None:
        return sign
    if np.dtype(compute) != np.float64:
        return (sign, min(1.0 / t, _F32_INV_CAP), 0.0, 1.0)
    tm, e = _split(t)
    if e >= 0:
        pre = math.ldexp(1.0, -(e + 1))  # 2**-1024 at most: a float64 subnormal, exact
        ih, il = _two_floats(Fraction(2) / Fraction(tm))
        return (sign * pre, ih, il, 1.0)
    k = -e
    j = min(k, 1022)
    ih, il = _two_floats(Fraction(1) / Fraction(tm))
    return (sign, math.ldexp(ih, j), math.ldexp(il, j), math.ldexp(1.0, k - j))


class Temperature:
    """A call's validated temperature (a float or None) and sign (-1.0 for softmin), turned
    into kernel parameters per compute dtype by `scaling`."""

    __slots__ = ("value", "sign")

    def __init__(self, temperature, sign=1.0):
        self.value = check_temperature(temperature)
        self.sign = float(sign)

    def scaling(self, dtype):
        """`kernel_scaling` for results of dtype (float16 and float32 compute in float32)."""
        compute = np.float64 if np.dtype(dtype) == np.float64 else np.float32
        return kernel_scaling(self.value, self.sign, compute)

    def __repr__(self):
        return f"Temperature({self.value!r}, sign={self.sign!r})"
