"""JAX's where= cases for softmax, log_softmax and logsumexp, as data (no JAX import here).

From jax's tests/nn_test.py (testSoftmaxEmptyArray, testSoftmaxEmptyMask,
testSoftmaxWhereMask, testSoftmaxWhereGrad, testLogMeanExp with where=) and
tests/lax_scipy_test.py (logsumexp with where=, b=, return_sign=), widened to the shapes,
axes and special values nbsoftmax must agree on: masks that broadcast, fully masked slices,
NaN and +-inf at masked and at unmasked positions. tests/test_peer_jax.py computes nbsoftmax
on them in-process and ``jax_results`` computes JAX's values (float64) in a fresh interpreter.
"""

import itertools
import zlib

import numpy as np

NN_X = np.array([5.5, 1.3, -4.2, 0.9])  # nn_test.py's vector
NN_MASK = np.array([True, False, True, True])


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def where_cases():
    """(name, op, x, mask, axis, grad_output) for softmax / log_softmax / logsumexp."""
    cases = [("nn-mask", NN_X, NN_MASK, -1), ("nn-empty-mask", NN_X, np.zeros(4, bool), -1),
             ("nn-where-grad", np.array([36.0, 10000.0]), np.array([True, False]), -1)]
    for shape, use_where, axis in itertools.product([(5,), (3, 5), (2, 3, 5)], [True, False],
                                                    [0, -1]):
        # testLogMeanExp's inputs: uniform in [-1, 1), a random 0/1 mask
        name = f"logmeanexp-{shape}-where{use_where}-axis{axis}"
        rng = _rng(name)
        x = rng.random(shape) * 2 - 1
        mask = rng.integers(0, 2, shape).astype(bool) if use_where else np.ones(shape, bool)
        cases.append((name, x, mask, axis))
    for shape, mshape, axis in [((4, 7), (4, 7), -1), ((4, 7), (7,), -1), ((4, 7), (4, 1), 0),
                                ((3, 4, 5), (4, 1), 1), ((3, 4, 5), (3, 4, 5), (0, 2)),
                                ((6, 9), (6, 9), None)]:
        name = f"special-{shape}-mask{mshape}-axis{axis}"
        rng = _rng(name)
        x = rng.normal(0.0, 5.0, shape)
        mask = rng.random(mshape) < 0.6
        flat_x = x.reshape(-1)
        flat_x[rng.integers(0, x.size, 4)] = [np.nan, np.inf, -np.inf, np.nan]
        if mask.ndim == x.ndim and mask.shape == x.shape:
            mask[0] = False  # a fully masked slice (rows) or masked positions
        cases.append((name, x, mask, axis))
    out = []
    for op in ("softmax", "log_softmax", "logsumexp"):
        for name, x, mask, axis in cases:
            grad = _rng(f"{op}-{name}-grad").standard_normal(x.shape)
            out.append((f"{op}-{name}", op, x, mask, axis, grad))
    return out


def logsumexp_b_cases():
    """(name, x, b, mask, axis, return_sign): lax_scipy_test's logsumexp with b=, where= and
    return_sign= (weights of both signs, zero weights, masks that broadcast)."""
    out = []
    for shape, bshape, mshape, axis, signed in [
            ((5,), (5,), None, -1, False), ((3, 5), (5,), (3, 5), -1, False),
            ((3, 5), (3, 1), None, 0, True), ((2, 3, 4), (2, 3, 4), (3, 4), (0, 2), True),
            ((4, 6), (4, 6), (4, 6), None, True), ((4, 6), (6,), (4, 6), -1, True)]:
        for return_sign in (False, True):
            name = f"lse-b-{shape}-b{bshape}-m{mshape}-axis{axis}-signed{signed}-rs{return_sign}"
            rng = _rng(name)
            x = rng.normal(0.0, 3.0, shape)
            b = rng.uniform(-1.0 if signed else 0.0, 2.0, bshape)
            b.reshape(-1)[0] = 0.0  # a zero weight
            mask = None if mshape is None else rng.random(mshape) < 0.7
            out.append((name, x, b, mask, axis, return_sign))
    return out


def jax_results(path):
    """JAX's values (float64) for every case, saved to path (an .npz). Fresh interpreter."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax.scipy.special

    out = {}
    for name, op, x, mask, axis, grad in where_cases():
        xj, mj = jnp.asarray(x), jnp.asarray(mask)
        if op == "logsumexp":
            out[f"{name}/value"] = np.asarray(jax.nn.logsumexp(xj, axis=axis, where=mj))
            continue
        f = getattr(jax.nn, op)
        value, vjp = jax.vjp(lambda v: f(v, axis=axis, where=mj), xj)
        out[f"{name}/value"] = np.asarray(value)
        out[f"{name}/grad"] = np.asarray(vjp(jnp.asarray(grad))[0])
    for name, x, b, mask, axis, return_sign in logsumexp_b_cases():
        result = jax.scipy.special.logsumexp(
            jnp.asarray(x), axis=axis, b=jnp.asarray(b), return_sign=return_sign,
            where=None if mask is None else jnp.asarray(mask))
        if return_sign:
            out[f"{name}/value"], out[f"{name}/sign"] = map(np.asarray, result)
        else:
            out[f"{name}/value"] = np.asarray(result)
    np.savez(path, **out)
