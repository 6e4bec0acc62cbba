"""Checks of tests/reference.py against torch and JAX, run by tests/test_oracles.py in a
subprocess (so that torch and JAX, hundreds of MB, never load into the test process, whose
memory tests/test_score.py measures). Each function raises AssertionError on a mismatch."""

import itertools

import numpy as np

from tests import reference

X = np.array([[1.0, 2.0, -3.0, 0.5], [np.nan, 1.0, 2.0, 0.0], [np.inf, 1.0, 0.0, 3.0],
              [-np.inf, -np.inf, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
MASK = np.array([[True, False, True, True], [False, True, True, False],
                 [False, True, True, True], [True, True, False, False],
                 [False, False, False, False]])


def torch_temperature_and_softmin():
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4))
    for axis in (0, 1, 2):
        t = torch.from_numpy(x)
        np.testing.assert_allclose(reference.softmin(x, axis), torch.nn.Softmin(dim=axis)(t),
                                   rtol=1e-14)
        np.testing.assert_allclose(reference.softmax_where(x, axis, temperature=0.3),
                                   torch.softmax(t / 0.3, axis), rtol=1e-13)
        np.testing.assert_allclose(reference.log_softmax_where(x, axis, temperature=3.0),
                                   torch.log_softmax(t / 3.0, axis), rtol=1e-13)
    # gradients with a temperature, by autograd
    t = torch.from_numpy(x[0]).requires_grad_()
    g = rng.standard_normal(x[0].shape)
    y = torch.softmax(t / 2.0, -1)
    y.backward(torch.from_numpy(g))
    want = reference.softmax_backward_where(g, y.detach().numpy(), -1, temperature=2.0)
    np.testing.assert_allclose(want, t.grad, rtol=1e-12, atol=1e-15)
    t.grad = None
    y = torch.log_softmax(t / 2.0, -1)
    y.backward(torch.from_numpy(g))
    want = reference.log_softmax_backward_where(g, y.detach().numpy(), -1, temperature=2.0)
    np.testing.assert_allclose(want, t.grad, rtol=1e-12, atol=1e-15)


def jax_where():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    for f, ref in ((jax.nn.softmax, reference.softmax_where),
                   (jax.nn.log_softmax, reference.log_softmax_where)):
        want = np.asarray(f(jnp.asarray(X), axis=-1, where=jnp.asarray(MASK)))
        got = ref(X, -1, MASK)
        np.testing.assert_allclose(got, want, rtol=1e-14)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    want = np.asarray(jax.nn.logsumexp(jnp.asarray(X), axis=-1, where=jnp.asarray(MASK)))
    np.testing.assert_allclose(reference.logsumexp_where(X, -1, MASK), want, rtol=1e-14)
    # the backward passes: masked entries get exactly 0 (jax.grad through where=)
    x = np.array([[36.0, 10000.0, 1.0]])
    m = x < 1000
    g = np.array([[0.5, 2.0, -1.0]])
    for f, ref, bw in ((jax.nn.softmax, reference.softmax_where, reference.softmax_backward_where),
                       (jax.nn.log_softmax, reference.log_softmax_where,
                        reference.log_softmax_backward_where)):
        _, vjp = jax.vjp(lambda v: f(v, axis=-1, where=jnp.asarray(m)), jnp.asarray(x))
        want = np.asarray(vjp(jnp.asarray(g))[0])
        got = bw(g, ref(x, -1, m), -1, m)
        np.testing.assert_allclose(got, np.where(m, want, 0.0), rtol=1e-12, atol=1e-15)
        assert np.all(got[~m] == 0) and np.all(np.isfinite(got))


OPTIONS = [dict(), dict(label_smoothing=0.2), dict(weight=True),
           dict(weight=True, label_smoothing=0.1, ignore_index=1), dict(temperature=2.0)]


def torch_cross_entropy():
    for probs, reduction, options in itertools.product([False, True], ["mean", "sum", "none"],
                                                       OPTIONS):
        _torch_cross_entropy(probs, reduction, options)


def _torch_cross_entropy(probs, reduction, options):
    import torch

    F = torch.nn.functional
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 3))  # torch's class axis 1
    if probs:
        t = rng.random((4, 5, 3))
        t /= t.sum(1, keepdims=True)
        options = {k: v for k, v in options.items() if k != "ignore_index"}
    else:
        t = rng.integers(0, 5, (4, 3))
    kwargs = dict(options)
    if kwargs.get("weight"):
        kwargs["weight"] = rng.random(5) + 0.5
    temperature = kwargs.pop("temperature", 1.0)
    tx = torch.from_numpy(x).requires_grad_()
    torch_kwargs = {k: torch.from_numpy(v) if k == "weight" else v for k, v in kwargs.items()}
    want = F.cross_entropy(tx / temperature, torch.from_numpy(t), reduction=reduction,
                           **torch_kwargs)
    want.sum().backward()
    loss, grad = reference.cross_entropy(x, t, 1, reduction, temperature=temperature, **kwargs)
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)
