"""PyTorch's own test inputs for softmax, log_softmax, logsumexp and cross_entropy, as data.

Taken from torch's test suite (torch 2.x): the OpInfo sample inputs
(``sample_inputs_softmax_variant``, ``sample_inputs_logsumexp`` and
``reference_inputs_logsumexp`` in ``torch.testing._internal``; ``sample_inputs_cross_entropy``),
the ModuleInfo inputs of ``torch.nn.CrossEntropyLoss``
(``module_inputs_torch_nn_CrossEntropyLoss``, which test_modules.py runs) and test_nn.py's
cross-entropy tests. Values are
drawn as torch's ``make_tensor`` draws them (uniform in [-9, 9) unless a range is given), from
a generator seeded by the case name, so tests/test_peer_torch.py (in-process) and
``torch_results`` (in a fresh interpreter, where torch may be imported) see the same arrays.

Each case: ``(name, op, arrays, kwargs)`` with ``op`` in softmax / log_softmax / logsumexp /
cross_entropy; arrays ``x`` (and ``target``, ``grad``); kwargs in nbsoftmax's terms (``axis``
is torch's ``dim``; for cross_entropy the class axis is 1, as in torch).
"""

import itertools
import zlib

import numpy as np

S, M = 5, 10  # torch.testing._internal.opinfo.core: S = 5, M = 10


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _uniform(rng, shape, low=-9.0, high=9.0, dtype=np.float64):
    return rng.uniform(low, high, shape).astype(dtype)


def softmax_cases():
    """sample_inputs_softmax_variant (with and without dtype=float64), with a grad_output."""
    shapes = [((S,), 0), ((S, S), 0), ((S, S), 1), ((S, S), -1), ((S, M, S), 2),
              ((S, 0, 0), -1), ((), 0)]
    for op, dtype, with_dtype, (shape, dim) in itertools.product(
            ["softmax", "log_softmax"], [np.float32, np.float64], [False, True], shapes):
        name = f"{op}-{np.dtype(dtype).name}-{shape}-dim{dim}" + ("-dtype" if with_dtype else "")
        rng = _rng(name)
        arrays = {"x": _uniform(rng, shape, dtype=dtype),
                  "grad": _uniform(rng, shape, dtype=np.float64 if with_dtype else dtype)}
        kwargs = {"axis": dim}
        if with_dtype:
            kwargs["dtype"] = "float64"
        yield name, op, arrays, kwargs


def logsumexp_cases():
    """sample_inputs_logsumexp (inputs at [low, 2 low) for low 1e3 and 1e6: stability) and
    reference_inputs_logsumexp."""
    inputs = [((), (0,), True), ((S, S), (1,), True), ((S, S), (1,), False),
              ((S, S), (-2,), False), ((S, S), (0, 1), False)]
    for dtype, low, (shape, dim, keepdim) in itertools.product(
            [np.float32, np.float64], [None, 1e3, 1e6], inputs):
        name = f"logsumexp-{np.dtype(dtype).name}-low{low}-{shape}-dim{dim}-keep{keepdim}"
        rng = _rng(name)
        x = _uniform(rng, shape, dtype=dtype) if low is None else \
            _uniform(rng, shape, low, 2 * low, dtype)
        yield name, "logsumexp", {"x": x}, {"axis": dim, "keepdims": keepdim}
    for dtype in (np.float32, np.float64):
        n = np.dtype(dtype).name
        yield (f"logsumexp-{n}-gh91843", "logsumexp", {"x": np.array([20, 30, 100], dtype)},
               {"axis": 0, "keepdims": False})
        yield (f"logsumexp-{n}-empty", "logsumexp", {"x": np.zeros((0,), dtype)},
               {"axis": 0, "keepdims": False})
        yield (f"logsumexp-{n}-inf-0d", "logsumexp", {"x": np.array(np.inf, dtype)},
               {"axis": 0, "keepdims": True})


def _targets(rng, shape, n_classes, probabilities, softmaxed=False):
    if not probabilities:
        return rng.integers(0, n_classes, shape)
    if softmaxed:  # ModuleInfo: make_input(shape).softmax(dim=1)
        z = _uniform(rng, shape)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    return _uniform(rng, shape, 0.0, 1.0)  # OpInfo: make_tensor(low=0, high=1), not normalised


def cross_entropy_opinfo_cases():
    """sample_inputs_cross_entropy: (2, 3) and spatial shapes, every reduction, random
    weights (of both signs: make_tensor's [-9, 9)), ignore_index=1, both target kinds."""
    batch, classes = 2, 3
    shape_kwargs = [((2, 3), {}), ((2, 3, 1), {}), ((2, 3, 1, 2), {}), ((2, 3, 1, 2, 3), {})]
    shape_kwargs += [((2, 3), {"reduction": r}) for r in ("mean", "sum", "none")]
    shape_kwargs += [((2, 3), {"weight": True, "reduction": r}) for r in ("mean", "sum", "none")]
    shape_kwargs += [((2, 3), {"ignore_index": 1})]
    for dtype, (i, (shape, kw)), probs in itertools.product(
            [np.float32, np.float64], enumerate(shape_kwargs), [False, True]):
        if probs and "ignore_index" in kw:
            continue  # not supported for probability targets (torch skips it too)
        name = f"xent-opinfo-{np.dtype(dtype).name}-{i}-{shape}-{kw}-probs{probs}"
        rng = _rng(name)
        kwargs = dict(kw, axis=1)
        if kwargs.get("weight"):
            kwargs["weight"] = _uniform(rng, (classes,))
        x = _uniform(rng, shape, dtype=dtype)
        t = _targets(rng, shape if probs else (batch, *shape[2:]), classes, probs)
        if probs:
            t = t.astype(dtype)
        if "ignore_index" in kwargs and np.all(t == kwargs["ignore_index"]):
            t.reshape(-1)[0] = 0  # at least one target kept, as torch's sample does
        yield name, "cross_entropy", {"x": x, "target": t}, kwargs


def cross_entropy_module_cases():
    """module_inputs_torch_nn_CrossEntropyLoss: 2-d to 6-d inputs, class weights, ignore_index,
    label_smoothing 0.15 and both together, every reduction; probability targets; no batch."""
    constructor = [("", {}), ("weights", {"weight": True}), ("ignore_index", {"ignore_index": 1}),
                   ("label_smoothing", {"label_smoothing": 0.15}),
                   ("ignore_index_label_smoothing", {"ignore_index": 1, "label_smoothing": 0.15})]
    index_shapes = [("4d", (2, 3, 5, 5)), ("3d", (2, 3, 5)), ("2d", (2, 3)),
                    ("higher_dim", (2, 3, 5, 5, 2, 2))]
    prob_shapes = [("4d_prob_target", (5, 3, 4, 2)), ("3d_prob_target", (5, 3, 4)),
                   ("2d_prob_target", (5, 3)), ("higher_dim_prob_target", (2, 3, 5, 5, 2, 2))]
    for reduction, (desc, kw) in itertools.product(["mean", "sum", "none"], constructor):
        shapes = [(s, shape, False) for s, shape in index_shapes]
        if "ignore_index" not in kw:
            shapes += [(s, shape, True) for s, shape in prob_shapes]
            shapes += [("no_batch_dim", (3,), False)]
        for label, shape, probs in shapes:
            name = f"xent-module-{label}_{desc}_{reduction}"
            rng = _rng(name)
            kwargs = dict(kw, reduction=reduction, axis=0 if shape == (3,) else 1)
            if kwargs.get("weight"):
                kwargs["weight"] = _uniform(rng, (3,))
            x = _uniform(rng, shape)
            if probs:
                t = _targets(rng, shape, 3, True, softmaxed=True)
            elif shape == (3,):
                t = rng.integers(0, 3, ())
            else:
                t = _targets(rng, (shape[0], *shape[2:]), 3, False)
            yield name, "cross_entropy", {"x": x, "target": t}, kwargs


def cross_entropy_nn_cases():
    """test_nn.py's cross-entropy cases with fixed values."""
    # test_cross_entropy_label_smoothing_weight_ignore_indices: two classes, ignore_index at
    # the default -100, at -2 and at 2 (outside the classes), weights [0.3, 0.6] or none
    inp1 = np.array([[0.3, 0.4], [1.0, 2.0]])
    inp2 = np.array([[0.3, 0.6], [1.0, 2.0]])
    for reduction, smoothing, weighted, (ignore, first) in itertools.product(
            ["none", "sum", "mean"], [0.05, 0.15], [False, True],
            [(-100, -100), (-2, -2), (2, 2)]):
        kwargs = {"reduction": reduction, "label_smoothing": smoothing, "ignore_index": ignore,
                  "axis": 1}
        if weighted:
            kwargs["weight"] = np.array([0.3, 0.6])
        for which, inp in (("inp1", inp1), ("inp2", inp2)):
            name = f"xent-nn-ignore{ignore}-{reduction}-{smoothing}-w{weighted}-{which}"
            yield name, "cross_entropy", {"x": inp, "target": np.array([first, 1])}, kwargs
    # all targets ignored, and an empty batch: mean is 0 / 0 = NaN, sum 0, none empty
    for reduction in ("mean", "sum", "none"):
        for weighted in (False, True):
            kwargs = {"reduction": reduction, "axis": 1}
            if weighted:
                kwargs["weight"] = np.array([0.5, 2.0, 1.0])
            rng = _rng(f"xent-nn-all-ignored-{reduction}-{weighted}")
            yield (f"xent-nn-all-ignored-{reduction}-w{weighted}", "cross_entropy",
                   {"x": _uniform(rng, (4, 3)), "target": np.full(4, -100)}, kwargs)
            yield (f"xent-nn-empty-{reduction}-w{weighted}", "cross_entropy",
                   {"x": np.zeros((0, 3)), "target": np.zeros(0, np.int64)}, kwargs)
        yield (f"xent-nn-empty-probs-{reduction}", "cross_entropy",
               {"x": np.zeros((0, 3)), "target": np.zeros((0, 3))}, {"reduction": reduction,
                                                                     "axis": 1})
    # zero class weights (a zero-weight target counts neither in the sum nor in the mean),
    # and negative ones
    for reduction, smoothing in itertools.product(["mean", "sum", "none"], [0.0, 0.2]):
        rng = _rng(f"xent-nn-zero-negative-weights-{reduction}-{smoothing}")
        yield (f"xent-nn-zero-negative-weights-{reduction}-{smoothing}", "cross_entropy",
               {"x": _uniform(rng, (6, 4)), "target": np.array([0, 1, 2, 3, 0, 2])},
               {"reduction": reduction, "label_smoothing": smoothing, "axis": 1,
                "weight": np.array([0.0, -1.5, 2.0, 0.0])})
    # test_cross_entropy_label_smoothing_consistent_index_target_and_probs: N, C = 10, 4,
    # spatial dimensions 0..4 of size 2; the same targets as indices and as one-hot
    for k, reduction, smoothing in itertools.product(range(5), ["mean", "sum", "none"],
                                                     [0.05, 0.15]):
        rng = _rng(f"xent-nn-consistent-{k}-{reduction}-{smoothing}")
        shape = (10, 4) + (2,) * k
        x = _uniform(rng, shape)
        t = rng.integers(0, 4, (10,) + (2,) * k)
        onehot = np.moveaxis(np.eye(4)[t], -1, 1)
        kwargs = {"reduction": reduction, "label_smoothing": smoothing, "axis": 1}
        base = f"xent-nn-consistent-{k}-{reduction}-{smoothing}"
        yield base + "-index", "cross_entropy", {"x": x, "target": t}, kwargs
        yield base + "-onehot", "cross_entropy", {"x": x, "target": onehot}, kwargs
    # test_cross_entropy_label_smoothing_with_probs: smoothing probability targets equals
    # smoothing them by hand
    for k, reduction in itertools.product(range(3), ["mean", "sum", "none"]):
        rng = _rng(f"xent-nn-smoothed-probs-{k}-{reduction}")
        shape = (10, 4) + (2,) * k
        x = _uniform(rng, shape)
        z = _uniform(rng, shape)
        q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        base = f"xent-nn-smoothed-probs-{k}-{reduction}"
        yield (base + "-option", "cross_entropy", {"x": x, "target": q},
               {"reduction": reduction, "label_smoothing": 0.3, "axis": 1})
        yield (base + "-byhand", "cross_entropy", {"x": x, "target": 0.7 * q + 0.3 / 4},
               {"reduction": reduction, "axis": 1})


def all_cases():
    return [*softmax_cases(), *logsumexp_cases(), *cross_entropy_opinfo_cases(),
            *cross_entropy_module_cases(), *cross_entropy_nn_cases()]


# ------------------------------------------------------------------ the torch side


def torch_results(path):
    """Every case computed by torch in float64 (on the same values; the float32 cases too:
    the oracle is then exact to float32's bounds); saved to path as an .npz of
    ``<name>/value`` and ``<name>/grad`` arrays. Run in a fresh interpreter."""
    import torch

    F = torch.nn.functional
    out = {}
    for name, op, arrays, kwargs in all_cases():
        x = torch.from_numpy(np.asarray(arrays["x"], np.float64)).requires_grad_()
        if op in ("softmax", "log_softmax"):
            y = getattr(torch, op)(x, kwargs["axis"])
            y.backward(torch.from_numpy(np.asarray(arrays["grad"], np.float64)))
        elif op == "logsumexp":
            y = torch.logsumexp(x, kwargs["axis"], keepdim=kwargs["keepdims"])
            y.sum().backward()
        else:
            t = np.asarray(arrays["target"])
            tt = torch.from_numpy(t.astype(np.float64) if t.dtype.kind == "f"
                                  else t.astype(np.int64))
            options = {k: v for k, v in kwargs.items() if k != "axis"}
            if "weight" in options:
                options["weight"] = torch.from_numpy(np.asarray(options["weight"], np.float64))
            y = F.cross_entropy(x, tt, **options)
            if y.numel():
                y.sum().backward()
        out[f"{name}/value"] = y.detach().numpy()
        out[f"{name}/grad"] = (x.grad.numpy() if x.grad is not None
                               else np.zeros(x.shape))
    np.savez(path, **out)
