"""torch CPU tensors in, torch tensors out (nbsoftmax.dispatch.torch_cpu), for every public function.

The checks run in a fresh interpreter (as tests/test_oracles.py does): torch would otherwise
stay loaded in the test process, whose memory tests/test_score.py measures. They skip where
torch is not installed (as in CI). Expected values come from the NumPy path of the same
function (itself tested against tests/reference.py) and, for cross_entropy and the softmax
family, from torch's own functions.
"""

import importlib.util

import numpy as np
import pytest

from .subproc import run_python


def _torch_or_skip():
    # pytest.importorskip without importing torch into this process (see the docstring)
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install torch to run these checks)")


CHECKS = ["every_function", "out_and_in_place", "layouts_and_dtypes", "refusals", "layers"]


def test_torch_cpu():
    # one interpreter for every check: importing torch there takes seconds
    _torch_or_skip()
    code = "from tests import test_torch_cpu as t\n" + "".join(
        f"t._check_{check}()\nprint({check!r}, 'ok')\n" for check in CHECKS)
    out = run_python(code, timeout=600)
    assert out.split() == [word for check in CHECKS for word in (check, "ok")]


def test_torch_is_never_imported_by_nbsoftmax():
    out = run_python("import sys, numpy as np, nbsoftmax\n"
                     "nbsoftmax.softmax(np.ones((3, 4)), axis=0)\n"
                     "nbsoftmax.cross_entropy(np.ones((3, 4)), [0, 1, 2])\n"
                     "print('torch' in sys.modules)")
    assert out.strip() == "False"


# ------------------------------------------------------------------ the checks (subprocess)


def _tensor(shape, dtype="float32", seed=0):
    import torch

    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.standard_normal(shape) * 3).astype(dtype))


def _same(got, want, rtol=0.0):
    """got (a tensor) equals want (a NumPy result) in dtype, shape and values."""
    import torch

    assert isinstance(got, torch.Tensor), type(got)
    want = np.asarray(want)
    assert got.numpy().dtype == want.dtype, (got.dtype, want.dtype)
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=0)


def _check_every_function():
    import torch
    import torch.nn.functional as F

    import nbsoftmax

    t = _tensor((5, 7))
    x = t.numpy().copy()
    g = _tensor((5, 7), seed=1)
    mask = torch.from_numpy(np.arange(35).reshape(5, 7) % 3 != 0)
    for name in ("softmax", "log_softmax", "softmin"):
        f = getattr(nbsoftmax, name)
        _same(f(t, axis=0), f(x, axis=0))
        _same(f(t, temperature=2.0, where=mask), f(x, temperature=2.0, where=mask.numpy()))
    torch.testing.assert_close(nbsoftmax.softmax(t, axis=1), torch.softmax(t, 1))
    torch.testing.assert_close(nbsoftmax.log_softmax(t), torch.log_softmax(t, -1))
    _same(nbsoftmax.logsumexp(t, axis=1, keepdims=True), nbsoftmax.logsumexp(x, axis=1,
                                                                             keepdims=True))
    _same(nbsoftmax.logsumexp(t, where=mask), nbsoftmax.logsumexp(x, where=mask.numpy()))
    y = nbsoftmax.softmax(t)
    for name in ("softmax_backward", "log_softmax_backward"):
        f = getattr(nbsoftmax, name)
        _same(f(g, y), f(g.numpy(), y.numpy()))
        _same(f(g, y, where=mask, temperature=0.5),
              f(g.numpy(), y.numpy(), where=mask.numpy(), temperature=0.5))
    target = torch.tensor([0, 6, 2, 3, 1])
    loss = nbsoftmax.cross_entropy(t, target, label_smoothing=0.1)
    assert isinstance(loss, torch.Tensor) and loss.shape == () and loss.dtype == torch.float32
    torch.testing.assert_close(loss, F.cross_entropy(t, target, label_smoothing=0.1))
    loss, grad = nbsoftmax.cross_entropy(t, target, reduction="none", return_grad=True)
    _same(loss, nbsoftmax.cross_entropy(x, target.numpy(), reduction="none"))
    want = t.clone().requires_grad_()
    F.cross_entropy(want, target, reduction="sum").backward()
    torch.testing.assert_close(grad, want.grad)
    probs, idx = nbsoftmax.softmax_topk(t, 3, axis=1)
    want_p, want_i = nbsoftmax.softmax_topk(x, 3, axis=1)
    _same(probs, want_p)
    _same(idx, want_i)
    assert idx.dtype == torch.int64


def _check_out_and_in_place():
    import torch

    import nbsoftmax

    t = _tensor((4, 6))
    want = nbsoftmax.softmax(t.numpy())
    out = torch.empty(4, 6)
    assert nbsoftmax.softmax(t, out=out) is out  # the out tensor itself, written in place
    _same(out, want)
    out = torch.empty(4, 6)
    assert nbsoftmax.softmax(t.numpy(), out=out) is out  # host array in, tensor out
    _same(out, want)
    x = t.clone()
    assert nbsoftmax.log_softmax(x, axis=0, out=x) is x
    _same(x, nbsoftmax.log_softmax(t.numpy(), axis=0))
    # out strided over a bigger tensor: the kernels write the tensor's own memory
    big = torch.zeros(4, 12)
    view = big[:, ::2]
    assert nbsoftmax.softmax(t, out=view) is view
    _same(big[:, ::2], want)
    assert (big[:, 1::2] == 0).all()
    # the result lives in memory the tensor owns: a write through numpy is seen
    r = nbsoftmax.softmax(t)
    r.numpy()[0, 0] = 7.0
    assert r[0, 0] == 7.0


def _check_layouts_and_dtypes():
    import torch

    import nbsoftmax

    base = _tensor((6, 8), "float64")
    for t in (base.T, base[1:, ::3], base.t().contiguous(), base[None, :, 2]):
        _same(nbsoftmax.softmax(t, axis=0), nbsoftmax.softmax(t.numpy(), axis=0))
    for dtype in (torch.float16, torch.float32, torch.float64):
        t = base.to(dtype)
        r = nbsoftmax.softmax(t)
        assert r.dtype == dtype
        _same(r, nbsoftmax.softmax(t.numpy()))
    r = nbsoftmax.softmax(torch.arange(6).reshape(2, 3))  # integers: computed in float64
    assert r.dtype == torch.float64
    r = nbsoftmax.softmax(torch.tensor(2.0))  # 0-d
    assert r.shape == () and r.item() == 1.0
    r = nbsoftmax.softmax(torch.empty(0, 3))
    assert r.shape == (0, 3) and r.dtype == torch.float32
    with torch.inference_mode():
        t = torch.ones(2, 2)
    _same(nbsoftmax.softmax(t), np.full((2, 2), 0.5, np.float32))
    _same(nbsoftmax.softmax(-base), nbsoftmax.softmax(-base.numpy()))  # a lazy negation


def _check_refusals():
    import torch

    import nbsoftmax

    t = _tensor((3, 4)).requires_grad_()
    before = t.detach().clone()
    for call in (lambda: nbsoftmax.softmax(t), lambda: nbsoftmax.logsumexp(t),
                 lambda: nbsoftmax.softmax_topk(t, 2),
                 lambda: nbsoftmax.cross_entropy(t, torch.tensor([0, 1, 2]))):
        try:
            call()
        except TypeError as exc:
            assert "requires grad" in str(exc) and ".detach()" in str(exc), exc
        else:
            raise AssertionError("a tensor that requires grad was accepted")
    out = torch.zeros(3, 4, requires_grad=True)
    try:
        nbsoftmax.softmax(before, out=out)
    except TypeError as exc:
        assert str(exc).startswith("out is a torch tensor that requires grad"), exc
    else:
        raise AssertionError("out that requires grad was accepted")
    assert (out == 0).all() and torch.equal(t.detach(), before)
    try:
        nbsoftmax.softmax(torch.ones(3, dtype=torch.bfloat16))
    except TypeError as exc:
        assert "torch.bfloat16" in str(exc) and "x.float()" in str(exc), exc
    else:
        raise AssertionError("bfloat16 was accepted")
    try:
        nbsoftmax.softmax(torch.ones(3, dtype=torch.complex64))
    except TypeError as exc:
        assert "complex64" in str(exc), exc
    else:
        raise AssertionError("complex was accepted")


def _check_layers():
    import torch

    import nbsoftmax

    t = _tensor((3, 5))
    g = _tensor((3, 5), seed=2)
    for cls, ref in ((nbsoftmax.Softmax, torch.nn.Softmax), (nbsoftmax.LogSoftmax,
                                                            torch.nn.LogSoftmax)):
        layer = cls(axis=1)
        y = layer.forward(t)
        want = t.clone().requires_grad_()
        want_y = ref(dim=1)(want)
        torch.testing.assert_close(y, want_y.detach())
        want_y.backward(g)
        torch.testing.assert_close(layer.backward(g), want.grad)
