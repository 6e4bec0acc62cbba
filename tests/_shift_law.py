"""The shift-invariance law and its bounds, shared by tests/test_shift_law.py (CPU, layers,
the score CLI) and tests/test_shift_law_cuda_sim.py (the GPU kernels under the simulator).

Every function of the logits depends on differences of logits only, so adding a constant
``c`` must change nothing, except by what the shift itself does to the input: ``x + c``
rounded to the dtype moves each logit by at most ``u``, half an ulp of the largest magnitude,
bounded here by a whole one,

    u = ulp(max(|c|, max|x + c|))       (float32 c = 1e6: u = 0.0625; float64 c = 2**45: 2**-7)

and a temperature ``T`` divides it, while computing ``x / T`` in the dtype (what the issue's
reference ``softmax(x / T)`` does) moves each scaled logit by up to ``u / T`` more. So each
scaled logit moves by at most ``e = u`` (``T`` absent) or ``e = u * (1 + 1 / T)``, and:

* probabilities (softmax, softmin, top-k): relative change <= ``expm1(2 e)``, since
  ``p'/p = exp(d_i - sum_j p_j d_j)`` with ``|d| <= e``;
* log-probabilities and per-sample losses: absolute change <= ``2 e`` per unit of target
  weight;
* logsumexp: ``lse(x + c) - c`` moves by <= ``e``, and rounding the result (of magnitude
  ``|c|``) to the dtype adds <= ``ulp(result)``;
* gradients: their probabilities move as above.

On top of that each of the two results carries the kernels' own accuracy bound (the issue's
bounds of tests/checks.BOUNDS), so the comparisons allow twice that. Two tighter checks do not
depend on ``c`` at all: rows of probabilities sum to 1 within the issue's row-sum bound at any
shift (law B), and, where no temperature rounds the input, the result on ``x + c`` matches
the float64 reference on the exactly shifted-back values ``(x + c) - c`` within the usual
tolerances (law C).
"""

import numpy as np

from tests import checks

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
LD = np.longdouble

# c up to 1e6 (float32) and 2**45 (float64) as the issue asks, both signs, and small ones
SHIFTS = {
    F32: [1.0, -37.5, 1e3, 1e6, -1e6],
    F64: [1.0, 1e6, 3.0e13, 2.0**45, -(2.0**45)],
}
CMAX = {F32: 1e6, F64: 2.0**45}


def logits(rng, shape, dtype):
    """N(0, 5) logits, as the issue's measurements used."""
    return rng.normal(0.0, 5.0, shape).astype(dtype)


class Shift:
    """x + c in x's dtype, the exactly shifted-back values and the law's bounds."""

    def __init__(self, x, c, temperature=None):
        x = np.asarray(x)
        self.dtype = x.dtype
        self.c = self.dtype.type(c)
        assert float(self.c) == c, f"the shift {c} must be representable in {self.dtype}"
        with np.errstate(over="raise"):
            self.xs = x + self.c
        # (x + c) - c: exact in longdouble; as float64, exact for the fixed shifts (whose
        # results lie on the grid of ulp(c)) and within float64 rounding for any other c
        back = self.xs.astype(LD) - LD(self.c)
        self.back = back.astype(np.float64)
        top = max(abs(float(c)), float(np.abs(self.xs).max(initial=0.0)))
        self.u = float(np.spacing(self.dtype.type(top)))
        moved = float(np.abs(back - x.astype(LD)).max(initial=0.0))
        assert moved <= self.u, f"x + c moved a logit by {moved} > ulp {self.u}"
        self.T = 1.0 if temperature is None else float(temperature)
        self.e = self.u if temperature is None else self.u * (1.0 + 1.0 / self.T)
        self.bound = checks.BOUNDS[self.dtype]

    # ----------------------------------------------------------- allowed differences

    def prob_rel(self, t_abs):
        """Relative difference allowed between probabilities of x and of x + c."""
        return np.expm1(2 * self.e) + 2 * (self.bound["a"] + self.bound["b"] * t_abs)

    def log_abs(self, y):
        """Absolute difference allowed between log-probabilities of x and of x + c."""
        return 2 * self.e + 2 * self.bound["c"] * (1 + np.abs(y))

    def lse_abs(self, lse_shifted):
        """|(lse(x + c) - c) - lse(x)| allowed."""
        v = np.abs(np.asarray(lse_shifted, np.float64))
        return (self.e + np.spacing(self.dtype.type(1.0)) * np.maximum(v, 1.0)
                + 2 * self.bound["c"] * (1 + v))

    # ----------------------------------------------------------- assertions

    def assert_probs(self, got_shifted, got, t_abs, what):
        p1, p0 = np.asarray(got_shifted, np.float64), np.asarray(got, np.float64)
        allowed = self.prob_rel(t_abs) * np.maximum(np.abs(p1), np.abs(p0)) + 1e-300
        checks.assert_within(p1, p0, allowed, f"{what}: x + {self.c} vs x")

    def assert_logs(self, got_shifted, got, what, weight=1.0):
        y1, y0 = np.asarray(got_shifted, np.float64), np.asarray(got, np.float64)
        allowed = weight * self.log_abs(np.maximum(np.abs(y1), np.abs(y0)))
        checks.assert_within(y1, y0, allowed, f"{what}: x + {self.c} vs x")

    def assert_row_sums(self, p, axis, what, rows=None):
        """Law B: each slice sums to 1 within the issue's row-sum bound (slices where
        ``rows`` is False, e.g. fully masked ones, are left out)."""
        axes = checks.reference.reduced_axes(axis, np.ndim(p))
        sums = np.sum(np.asarray(p).astype(LD), axis=axes)
        err = np.abs(sums - 1)
        if rows is not None:
            err = np.where(rows, err, 0)
        worst = float(np.max(err, initial=0.0))
        assert worst <= self.bound["row_sum"], (
            f"{what} at shift {self.c}: a slice sums to 1 +- {worst:.3g} "
            f"(bound {self.bound['row_sum']})")


def t_abs(x, axis, temperature=None, where=None):
    """|x - max(x)| / T over each slice (masked entries left out of the max): the argument
    of exp, on which the accuracy bounds depend."""
    x = np.asarray(x, np.float64)
    axes = checks.reference.reduced_axes(axis, x.ndim)
    filled = x if where is None else np.where(np.broadcast_to(where, x.shape), x, -np.inf)
    m = np.max(filled, axis=axes, keepdims=True)
    with np.errstate(invalid="ignore"):
        t = np.abs(x - m) / (1.0 if temperature is None else temperature)
    return np.nan_to_num(t, nan=0.0, posinf=0.0)
