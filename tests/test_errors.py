"""Every bad argument: the exception type, a message naming what was wrong, and nothing written.

Each case calls a function with fresh arrays and checks afterwards that the inputs and ``out``
are bit-for-bit what they were (errors are raised before anything is written).
"""

import re

import numpy as np
import pytest

import nbsoftmax

AxisError = np.exceptions.AxisError
SHAPE = (3, 4)


def _x(dtype=np.float64):
    return (np.arange(12, dtype=np.float64).reshape(SHAPE) / 7).astype(dtype)


def _readonly(arr):
    arr.flags.writeable = False
    return arr


def _out(shape=SHAPE, dtype=np.float64):
    return np.full(shape, 42.0, dtype)


# (id, function, positional args, keyword args, exception, match)
FORWARD = [nbsoftmax.softmax, nbsoftmax.log_softmax]
CASES = []
for f in FORWARD + [nbsoftmax.logsumexp]:
    name = f.__name__
    CASES += [
        (f"{name}-axis-float", f, (_x(),), dict(axis=1.5), TypeError, r"axis must be an int.*not 1\.5"),
        (f"{name}-axis-str", f, (_x(),), dict(axis="1"), TypeError, r"axis must be an int.*not '1'"),
        (f"{name}-axis-bool", f, (_x(),), dict(axis=True), TypeError, r"axis must be an int.*not True"),
        (f"{name}-axis-tuple-of-float", f, (_x(),), dict(axis=(0, 1.0)), TypeError, r"axis must be an int"),
        (f"{name}-axis-out-of-range", f, (_x(),), dict(axis=2), AxisError, r"axis 2 is out of bounds"),
        (f"{name}-axis-negative-out-of-range", f, (_x(),), dict(axis=-3), AxisError, r"-3 is out of bounds"),
        (f"{name}-axis-tuple-out-of-range", f, (_x(),), dict(axis=(0, 5)), AxisError, r"5 is out of bounds"),
        (f"{name}-axis-repeated", f, (_x(),), dict(axis=(1, 1)), ValueError, r"axis \(1, 1\) repeats"),
        (f"{name}-axis-repeated-negative", f, (_x(),), dict(axis=(0, -2)), ValueError,
         r"axis \(0, -2\) repeats"),
        (f"{name}-0d-axis-1", f, (np.float64(1),), dict(axis=1), AxisError, r"out of bounds for a 0-d"),
        (f"{name}-complex", f, (_x(np.complex128),), {}, TypeError, r"complex128.*expected .*float64"),
        (f"{name}-complex64", f, (_x(np.complex64),), {}, TypeError, r"complex64"),
        (f"{name}-object", f, (_x(object),), {}, TypeError, r"unsupported dtype object"),
        (f"{name}-str", f, (np.array(["a", "b"]),), {}, TypeError, r"unsupported dtype <U1"),
        (f"{name}-bytes", f, (np.array([b"a"]),), {}, TypeError, r"unsupported dtype \|S1"),
        (f"{name}-datetime", f, (np.array(["2024-01-01"], "datetime64[D]"),), {}, TypeError,
         r"datetime64\[D\]"),
        (f"{name}-timedelta", f, (np.array([1], "timedelta64[s]"),), {}, TypeError, r"timedelta64\[s\]"),
        (f"{name}-structured", f, (np.zeros(3, [("a", "f8")]),), {}, TypeError, r"unsupported dtype"),
        (f"{name}-ragged-list", f, ([[1.0, 2.0], [3.0]],), {}, TypeError, r"could not be converted"),
        (f"{name}-device", f, (_x(),), dict(device="gpu"), ValueError, r"device must be.*not 'gpu'"),
        (f"{name}-device-int", f, (_x(),), dict(device=0), ValueError, r"device must be.*not 0"),
    ]
for f in FORWARD:
    name = f.__name__
    CASES += [
        (f"{name}-out-shape", f, (_x(),), dict(out=_out((4, 3))), ValueError,
         r"out has shape \(4, 3\) but the result has shape \(3, 4\)"),
        (f"{name}-out-shape-0d", f, (np.float64(1),), dict(out=_out((1,))), ValueError,
         r"out has shape \(1,\) but the result has shape \(\)"),
        (f"{name}-out-dtype", f, (_x(),), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-dtype-int-input", f, (_x(np.int32),), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-dtype-vs-dtype-arg", f, (_x(),), dict(dtype=np.float16, out=_out()), TypeError,
         r"out has dtype float64 but the result has dtype float16"),
        (f"{name}-out-int", f, (_x(),), dict(out=_out(dtype=np.int64)), TypeError, r"out has dtype int64"),
        (f"{name}-out-readonly", f, (_x(),), dict(out=_readonly(_out())), ValueError, r"out is read-only"),
        (f"{name}-out-broadcast", f, (_x(),), dict(out=np.broadcast_to(_out((1, 4)), SHAPE)), ValueError,
         r"out is read-only"),
        (f"{name}-out-list", f, (_x(),), dict(out=[[0.0] * 4] * 3), TypeError,
         r"out must be a numpy.ndarray, not list"),
        (f"{name}-out-memoryview", f, (_x(),), dict(out=memoryview(_out())), TypeError,
         r"out must be a numpy.ndarray, not memoryview"),
        (f"{name}-dtype-int", f, (_x(),), dict(dtype=np.int32), TypeError,
         r"dtype=int32 is not supported; expected float16, float32 or float64"),
        (f"{name}-dtype-complex", f, (_x(),), dict(dtype="complex64"), TypeError, r"dtype=complex64"),
        (f"{name}-dtype-bool", f, (_x(),), dict(dtype=bool), TypeError, r"dtype=bool"),
        (f"{name}-dtype-nonsense", f, (_x(),), dict(dtype="nonsense"), TypeError, r"not a dtype"),
        (f"{name}-dtype-cannot-rescue-complex", f, (_x(np.complex128),), dict(dtype=np.float64),
         TypeError, r"complex128"),
        (f"{name}-bad-axis-with-out", f, (_x(),), dict(axis=7, out=_out()), AxisError, r"7 is out of bounds"),
        (f"{name}-bad-dtype-with-out", f, (_x(np.complex128),), dict(out=_out()), TypeError, r"complex128"),
    ]
for f in [nbsoftmax.softmax_backward, nbsoftmax.log_softmax_backward]:
    name = f.__name__
    CASES += [
        (f"{name}-shape-mismatch", f, (_x(), _out((3, 5))), {}, ValueError,
         r"grad_output has shape \(3, 4\) but output has shape \(3, 5\)"),
        (f"{name}-shape-broadcastable", f, (_x(), _out((1, 4))), {}, ValueError, r"must match"),
        (f"{name}-grad-complex", f, (_x(np.complex128), _x()), {}, TypeError,
         r"grad_output has unsupported dtype complex128"),
        (f"{name}-output-object", f, (_x(), _x(object)), {}, TypeError,
         r"output has unsupported dtype object"),
        (f"{name}-output-datetime", f, (_x(), np.zeros(SHAPE, "datetime64[s]")), {}, TypeError,
         r"output has unsupported dtype datetime64\[s\]"),
        (f"{name}-out-shape", f, (_x(), _x()), dict(out=_out((4, 3))), ValueError, r"out has shape \(4, 3\)"),
        (f"{name}-out-dtype", f, (_x(np.float32), _x()), dict(out=_out(dtype=np.float32)), TypeError,
         r"out has dtype float32 but the result has dtype float64"),
        (f"{name}-out-readonly", f, (_x(), _x()), dict(out=_readonly(_out())), ValueError, r"read-only"),
        (f"{name}-out-tuple", f, (_x(), _x()), dict(out=(1, 2)), TypeError, r"not tuple"),
        (f"{name}-axis-out-of-range", f, (_x(), _x()), dict(axis=-3), AxisError, r"out of bounds"),
        (f"{name}-axis-repeated", f, (_x(), _x()), dict(axis=(1, -1)), ValueError, r"repeats"),
        (f"{name}-axis-float", f, (_x(), _x()), dict(axis=0.0), TypeError, r"axis must be an int"),
        (f"{name}-device", f, (_x(), _x()), dict(device="cuda:0"), ValueError, r"device must be"),
    ]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_argument(case):
    _, func, args, kwargs, exc, match = case
    arrays = [a for a in (*args, kwargs.get("out")) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)
    for arr, copy in zip(arrays, before):
        assert arr.tobytes() == copy.tobytes(), "an array was written before the error"


@pytest.mark.parametrize("func", FORWARD)
def test_in_place_read_only_input_is_refused(func):
    x = _readonly(_x())
    with pytest.raises(ValueError, match="read-only"):
        func(x, out=x)


@pytest.mark.parametrize("func", FORWARD)
def test_options_are_keyword_only(func):
    with pytest.raises(TypeError):
        func(_x(), -1, None, _out())
    with pytest.raises(TypeError):
        nbsoftmax.logsumexp(_x(), -1, True)
    with pytest.raises(TypeError):
        nbsoftmax.softmax_backward(_x(), _x(), -1, _out())


# ------------------------------------------------------------------ issue 11 item 13
# Arguments of the wrong kind: torch's keyword names, None for an array, strings for numbers
# and bools, masked arrays, axes beyond a C long.

def _xent(**kw):
    return nbsoftmax.cross_entropy(_x(), np.array([0, 1, 2]), **kw)


# (function name, call with **kw, leading arguments in the suggested call)
PUBLIC = [
    ("softmax", lambda **kw: nbsoftmax.softmax(_x(), **kw)),
    ("log_softmax", lambda **kw: nbsoftmax.log_softmax(_x(), **kw)),
    ("softmin", lambda **kw: nbsoftmax.softmin(_x(), **kw)),
    ("logsumexp", lambda **kw: nbsoftmax.logsumexp(_x(), **kw)),
    ("softmax_backward", lambda **kw: nbsoftmax.softmax_backward(_x(), _x(), **kw)),
    ("log_softmax_backward", lambda **kw: nbsoftmax.log_softmax_backward(_x(), _x(), **kw)),
    ("cross_entropy", _xent),
    ("softmax_topk", lambda **kw: nbsoftmax.softmax_topk(_x(), 2, **kw)),
    ("Softmax", lambda **kw: nbsoftmax.Softmax(**kw)),
    ("LogSoftmax", lambda **kw: nbsoftmax.LogSoftmax(**kw)),
]


@pytest.mark.parametrize("name,call", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_torch_dim_keyword_says_axis(name, call):
    with pytest.raises(TypeError) as info:
        call(dim=1)
    message = str(info.value)
    assert message.startswith(f"{name}() got an unexpected keyword argument 'dim'")
    assert "axis=" in message and "_SoftmaxLayer" not in message
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument "
                                        r"'nonsense'$"):
        call(nonsense=1)


def test_torch_keepdim_keyword_says_keepdims():
    with pytest.raises(TypeError, match=r"'keepdim'.*keepdims="):
        nbsoftmax.logsumexp(_x(), keepdim=True)


@pytest.mark.parametrize("name", [p[0] for p in PUBLIC])
def test_signatures_show_no_catch_all(name):
    import inspect

    params = inspect.signature(getattr(nbsoftmax, name)).parameters.values()
    assert all(p.kind is not p.VAR_KEYWORD for p in params)


NONE_CASES = [
    ("softmax-x", lambda: nbsoftmax.softmax(None), "x"),
    ("log_softmax-x", lambda: nbsoftmax.log_softmax(None, temperature=2.0), "x"),
    ("logsumexp-x", lambda: nbsoftmax.logsumexp(None), "x"),
    ("softmax_backward-output", lambda: nbsoftmax.softmax_backward(_x(), None), "output"),
    ("log_softmax_backward-grad", lambda: nbsoftmax.log_softmax_backward(None, _x()),
     "grad_output"),
    ("cross_entropy-target", lambda: nbsoftmax.cross_entropy(_x(), None), "target"),
    ("softmax_topk-x", lambda: nbsoftmax.softmax_topk(None, 1), "x"),
]


@pytest.mark.parametrize("call,name", [c[1:] for c in NONE_CASES], ids=[c[0] for c in NONE_CASES])
def test_none_for_an_array_says_what_was_expected(call, name):
    with pytest.raises(TypeError, match=rf"^{name} must be an array or array_like of real "
                                        r"numbers .*, not None$"):
        call()


@pytest.mark.parametrize("keepdims", ["no", "", 2, 1.0, None, [True]])
def test_keepdims_must_be_a_bool(keepdims):
    message = f"keepdims must be True or False, not {keepdims!r}"
    with pytest.raises(TypeError, match=re.escape(message)):
        nbsoftmax.logsumexp(_x(), keepdims=keepdims)


@pytest.mark.parametrize("keepdims,shape", [(True, (3, 1)), (np.True_, (3, 1)), (1, (3, 1)),
                                            (False, (3,)), (np.False_, (3,)), (0, (3,))])
def test_keepdims_bools(keepdims, shape):
    assert nbsoftmax.logsumexp(_x(), keepdims=keepdims).shape == shape


XENT_CASES = [
    ("smoothing-str", dict(label_smoothing="0.1"), TypeError,
     r"label_smoothing must be a real number, not '0.1'"),
    ("smoothing-bool", dict(label_smoothing=True), TypeError, r"label_smoothing must be a real"),
    ("smoothing-none", dict(label_smoothing=None), TypeError, r"label_smoothing must be a real"),
    ("smoothing-nan", dict(label_smoothing=float("nan")), ValueError, r"between 0 and 1, not nan"),
    ("smoothing-big", dict(label_smoothing=1.5), ValueError, r"between 0 and 1, not 1.5"),
    ("reduction-int", dict(reduction=1), TypeError,
     r"reduction must be one of .* \(a str\), not 1"),
    ("reduction-none-object", dict(reduction=None), TypeError, r"reduction must be one of"),
    ("reduction-unknown", dict(reduction="avg"), ValueError, r"reduction must be one of .*'avg'"),
    ("return-grad-str", dict(return_grad="yes"), TypeError,
     r"return_grad must be True or False, not 'yes'"),
]


@pytest.mark.parametrize("kw,exc,match", [c[1:] for c in XENT_CASES],
                         ids=[c[0] for c in XENT_CASES])
def test_cross_entropy_option_types(kw, exc, match):
    with pytest.raises(exc, match=match):
        _xent(**kw)


def test_cross_entropy_numeric_options_of_numpy_types():
    want = _xent(label_smoothing=0.25)
    assert _xent(label_smoothing=np.float32(0.25)) == want
    assert _xent(label_smoothing=np.float64(0.25), reduction=np.str_("mean")) == want
    assert _xent(label_smoothing=0) == _xent()


HUGE_AXES = [2**63, -(2**63) - 1, 2**64, 10**30, (0, 2**63)]
AXIS_CALLS = [p for p in PUBLIC if p[0][0].islower()]


@pytest.mark.parametrize("axis", HUGE_AXES, ids=str)
@pytest.mark.parametrize("name,call", AXIS_CALLS, ids=[p[0] for p in AXIS_CALLS])
def test_axis_beyond_a_c_long_is_an_axis_error(name, call, axis):
    if name in ("cross_entropy", "softmax_topk") and isinstance(axis, tuple):
        exc = ValueError  # one class axis only: a tuple is refused before its values
    else:
        exc = AxisError
    with pytest.raises(exc, match="axis"):
        call(axis=axis)


# Masked arrays: decided (nbsoftmax.dispatch.args.unmasked) that a mask is never read implicitly;
# one with masked entries is refused with the explicit spelling (where=), one without any
# is its data.
def _masked():
    return np.ma.array(_x(), mask=np.arange(12).reshape(SHAPE) % 5 == 0)


MASKED_CASES = [
    ("softmax", lambda m: nbsoftmax.softmax(m), "x"),
    ("logsumexp", lambda m: nbsoftmax.logsumexp(m, where=np.ones(SHAPE, bool)), "x"),
    ("backward-output", lambda m: nbsoftmax.softmax_backward(_x(), m), "output"),
    ("cross_entropy", lambda m: nbsoftmax.cross_entropy(m, [0, 1, 2]), "x"),
    ("softmax_topk", lambda m: nbsoftmax.softmax_topk(m, 2), "x"),
    ("where", lambda m: nbsoftmax.softmax(_x(), where=m > 0), "where"),
]


@pytest.mark.parametrize("call,name", [c[1:] for c in MASKED_CASES],
                         ids=[c[0] for c in MASKED_CASES])
def test_masked_arrays_with_masked_entries_are_refused(call, name):
    m = _masked()
    data, mask = m.data.copy(), m.mask.copy()
    with pytest.raises(TypeError, match=rf"{name} is a numpy masked array \(3 of 12 entries "
                                        r"masked\).*where=~np.ma.getmaskarray"):
        call(m)
    np.testing.assert_array_equal(m.data, data)
    np.testing.assert_array_equal(m.mask, mask)


def test_masked_out_is_refused_and_unwritten():
    out = np.ma.array(_out(), mask=False)
    with pytest.raises(TypeError, match="out is a numpy masked array"):
        nbsoftmax.softmax(_x(), out=out)
    assert (out.data == 42.0).all()


def test_masked_array_without_masked_entries_is_its_data():
    m = np.ma.array(_x(), mask=False)
    got = nbsoftmax.softmax(m, axis=0)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, nbsoftmax.softmax(_x(), axis=0))
    # the explicit spelling of a mask gives the masked semantics
    m = _masked()
    got = nbsoftmax.softmax(m.data, where=~np.ma.getmaskarray(m))
    assert (got[m.mask] == 0).all()
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-15)
