"""Error bounds for cross_entropy results, from the per-class target coefficients.

A sample's loss is ``-sum_c coef[c] * log_softmax(x / T)[c]`` and its gradient
``(p * sum(coef) - coef) / T`` (p the softmax), both divided by the "mean" denominator
``den`` (the kept targets' weight sum, or count; the sample count for probability targets).
With weights of both signs ``den`` can be small, so the bounds are stated in terms of the
absolute coefficients: each log-probability carries log_softmax's bound ``c * (1 + |y|)``
and each probability softmax's ``a + b * |t|`` (tests/checks.BOUNDS), twice for comparisons
of two results (or of a result with the float64 reference, itself within 0.9 of them).
"""

import numpy as np

from tests import checks, reference


def coefficients(target, n_classes, axis=-1, weight=None, label_smoothing=0.0,
                 ignore_index=-100, reduction="mean", **_):
    """(coef with the class axis last, den): den is 1 unless reduction is "mean"."""
    t = np.asarray(target)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    if t.dtype.kind == "f":
        q = np.moveaxis(t.astype(np.float64), axis, -1)
        coef = ((1 - eps) * q + eps / n_classes) * w
        den = float(np.prod(q.shape[:-1]))
    else:
        kept = t != ignore_index
        safe = np.where(kept, t, 0)
        coef = ((1 - eps) * np.eye(n_classes)[safe] + eps / n_classes) * w
        coef = np.where(kept[..., None], coef, 0.0)
        den = float(np.sum(np.where(kept, w[safe], 0.0)))
    if reduction != "mean":
        den = 1.0
    return coef, den


def allowed(logits, target, dtype, axis=-1, temperature=None, **kwargs):
    """(allowed |loss error|, allowed |gradient error| in the logits' layout), twice the
    bounds, for a result in dtype against the exact (or float64) one."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    t_scale = 1.0 if temperature is None else float(temperature)
    n_classes = x.shape[-1]
    coef, den = coefficients(target, n_classes, axis, **kwargs)
    den = abs(den) if den else 1.0  # 0 / 0: NaN either way, compared as such
    bound = checks.BOUNDS[np.dtype(np.float64 if dtype == np.float64 else np.float32)]
    acoef = np.abs(coef)
    with np.errstate(all="ignore"):
        lp = np.abs(np.nan_to_num(reference.log_softmax_where(x, -1, temperature=t_scale),
                                  posinf=0.0, neginf=0.0))
        p = np.nan_to_num(reference.softmax_where(x, -1, temperature=t_scale))
        t = np.nan_to_num(np.abs(reference.shifted_exact(x, -1).astype(np.float64)) / t_scale,
                          posinf=0.0)
    eps = np.finfo(np.float64 if dtype == np.float64 else np.float32).eps
    per_sample = np.sum(acoef * (2 * bound["c"] * (1 + lp) + 4 * eps), -1) / den
    reduction = kwargs.get("reduction", "mean")
    loss = per_sample if reduction == "none" else per_sample.sum() + 4 * eps * np.abs(
        per_sample).sum()
    sum_coef = np.abs(coef.sum(-1, keepdims=True))
    grad = (2 * (bound["a"] + bound["b"] * t) * p * sum_coef
            + 32 * eps * (p * sum_coef + acoef)) / t_scale / den
    return loss, np.moveaxis(grad, -1, axis)
