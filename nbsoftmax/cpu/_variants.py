"""Every compiled CPU kernel a public function can run: the list that precompilation walks.

A *variant* is one driver of ``_drivers`` compiled for one signature, as the backend's
getters build it on first use: ``get_kernel(op, layout, storage, parallel)`` for softmax,
log_softmax, logsumexp and the backward passes (row, general-row, one-block, short-row,
column and split-row drivers; the ``scaled`` and ``masked`` ones of ``temperature=``,
softmin and ``where=``), ``_xent_kernel`` for cross_entropy and ``_topk_kernel`` for
softmax_topk, ``_segment_run.kernel`` for the segment functions. Variants are plain tuples
of strings and bools, so that a worker process can be told which to build
(``nbsoftmax._precompile``).

A driver function has one index file in the on-disk cache whatever its signatures, and
index updates from two processes at once can lose one of them (``_cache``): ``by_driver``
groups the variants so that one process builds all of a driver's signatures.
"""

import inspect
import itertools
from collections import namedtuple

import numpy as np

# family: "elementwise" (args: op, layout, storage, parallel), "xent" (kind, storage, the
# flags of cpu._xent_kernel, parallel), "topk" (storage, parallel) or "lse" (name, storage, weighted, masked,
# signed, parallel: _lse_run._kernel) or "segment" (kind, storage, parallel:
# _segment_run.kernel); driver: the _drivers (or _segment) function's name.
Variant = namedtuple("Variant", "family args driver")

PLAIN_LAYOUTS = ("rows", "rows_general", "block", "short", "columns", "split")

# Public names besides the backend's ops (cpu._OPS), and what each of them runs.
EXTRA_OPS = ("softmin", "cross_entropy", "softmax_topk")


def _storage(dtype):
    """The storage dtype name of a result dtype: float16 data is passed as its uint16 bits."""
    dtype = np.dtype(dtype)
    return "uint16" if dtype == np.float16 else dtype.name


def _reachable(op, layout, storage):
    """False for the drivers that exist but that no call reaches: float16 softmax rows always
    take the general-row kernels (cpu._row_layout); logsumexp has no temperature, so its
    scaled driver runs with a mask only; a temperature takes the "tempered" signatures, so
    the sign alone ("scaled") is softmin's, a softmax."""
    if op == "softmax" and storage == "uint16" and layout in ("rows", "block"):
        return False
    if op == "logsumexp" and layout in _scaled_layouts():
        return layout == "masked"
    if layout == "scaled" and "tempered" in _scaled_layouts():
        return op == "softmax"  # the sign alone: softmin without a temperature
    return True


def _scaled_layouts():
    """The layouts of the ``_drivers.*_scaled_*`` sources (a mask or not, a scale or a
    temperature: one source, several signatures)."""
    from . import _registry

    return getattr(_registry, "_SCALED_LAYOUTS", ("scaled", "masked"))


def _driver_name(op, layout, parallel):
    kind = "scaled" if layout in _scaled_layouts() else layout
    return f"{op}_{kind}_{'parallel' if parallel else 'serial'}"


def _has_lse():
    """Whether the kernels of logsumexp's b=/return_sign= and logsumexp_backward exist."""
    from . import _drivers

    return hasattr(_drivers, "lse_rows_serial")


def public_ops():
    """The names ``precompile(ops=...)`` accepts: the backend's ops and EXTRA_OPS."""
    from ._registry import _OPS

    return (tuple(_OPS) + EXTRA_OPS + (("logsumexp_backward",) if _has_lse() else ())
            + tuple(_segment_ops()))


def _flag_names(getter):
    """The boolean parameters of a getter, between ``storage`` and ``parallel`` (the Numba
    types of optional arguments: None or an array, a scale or a temperature, ...)."""
    params = list(inspect.signature(getter).parameters)
    return params[params.index("storage") + 1:params.index("parallel")]


def _xent_variants(storage):
    """cross_entropy: class indices or probabilities, with every combination of its getter's
    flags (weight, gradient, temperature, ...), serial and parallel."""
    from ._registry import _xent_kernel

    flags = _flag_names(_xent_kernel)
    return [Variant("xent", (kind, storage) + combo + (par,), f"xent_{kind}_{_par(par)}")
            for kind in ("index", "probs") for combo in itertools.product((False, True),
                                                                          repeat=len(flags))
            for par in (False, True)]


def _lse_variants(op, storage):
    """logsumexp with b= (weighted), where= (masked) or return_sign= (signed) in any
    combination but none (the plain kernels); logsumexp_backward with where= or not."""
    from ._lse_run import _kernel

    assert _flag_names(_kernel) == ["weighted", "masked", "signed"], _flag_names(_kernel)
    if op == "logsumexp":
        combos = [(w, m, s) for w in (False, True) for m in (False, True) for s in (False, True)
                  if w or s]  # where= alone runs the masked plain kernels
        name = "lse"
    else:
        combos, name = [(False, m, False) for m in (False, True)], "lse_backward"
    return [Variant("lse", (name, storage) + combo + (par,), f"{name}_rows_{_par(par)}")
            for combo in combos for par in (False, True)]


def variants(ops, dtypes):
    """The variants the public functions ``ops`` run for result ``dtypes`` (serial and
    parallel: the cache may serve a machine with more cores than this one)."""
    from . import _drivers
    from ._registry import _OPS

    found = []
    for dtype in dtypes:
        storage = _storage(dtype)
        for op in ops:
            if op == "cross_entropy":
                found += _xent_variants(storage)
                continue
            if op in _segment_ops():  # float16 segments compute in float32 (one key)
                kind = _segment_ops()[op]
                found += [Variant("segment", (kind, storage, par), f"segment_{kind}_{_par(par)}")
                          for par in (False, True)]
                continue
            if op == "softmax_topk":
                found += [Variant("topk", (storage, par), f"topk_rows_{_par(par)}")
                          for par in (False, True)]
                continue
            if op in ("logsumexp", "logsumexp_backward") and _has_lse():
                found += _lse_variants(op, storage)
                if op == "logsumexp_backward":
                    continue
            kernel_op, layouts = (("softmax", _scaled_layouts()) if op == "softmin"
                                  else (op, PLAIN_LAYOUTS + _scaled_layouts()))
            if kernel_op not in _OPS:
                raise ValueError(f"unknown op {op!r}")
            for layout in layouts:
                for par in (False, True):
                    name = _driver_name(kernel_op, layout, par)
                    if hasattr(_drivers, name) and _reachable(kernel_op, layout, storage):
                        found.append(Variant("elementwise", (kernel_op, layout, storage, par),
                                             name))
    return list(dict.fromkeys(found))  # softmin repeats softmax's scaled variants


def _segment_ops():
    from ._segment_run import OPS

    return OPS


def _par(parallel):
    return "parallel" if parallel else "serial"


def by_driver(found):
    """{driver name: [variants]}: what one process must build alone (one index file)."""
    groups = {}
    for v in found:
        groups.setdefault(v.driver, []).append(v)
    return groups


def key(variant):
    """The variant's key in the backend's table of built kernels (``_registry._compiled``)."""
    family, args = variant.family, tuple(variant.args)
    if family == "elementwise":
        op, layout, storage, par = args
        return (op, layout, np.dtype(storage), par)
    if family == "xent":
        return ("xent", args[0], np.dtype(args[1])) + args[2:]
    if family == "topk":
        storage, par = args
        return ("topk", np.dtype(storage), par)
    if family == "lse":
        return (args[0], np.dtype(args[1])) + args[2:]
    if family == "segment":
        from ._segment_run import key as segment_key

        return segment_key(*args)
    raise ValueError(f"unknown kernel family {family!r}")


def build(variant):
    """Compile the variant, or load it from the on-disk cache. Returns "compiled", "loaded"
    or "ready" (built earlier in this process)."""
    from ._registry import _compiled, _topk_kernel, _xent_kernel, get_kernel

    k = key(variant)
    if k in _compiled:
        return "ready"
    if variant.family == "lse":
        from ._lse_run import _kernel

        kernel = _kernel(*k)
    elif variant.family == "segment":
        from ._segment_run import kernel as segment_kernel

        kernel = segment_kernel(*k[1:])
    else:
        getter = {"elementwise": get_kernel, "xent": _xent_kernel, "topk": _topk_kernel}
        kernel = getter[variant.family](*(k if variant.family == "elementwise" else k[1:]))
    return "compiled" if sum(kernel.stats.cache_misses.values()) else "loaded"


def label(variant):
    """A short human-readable name: ``softmax rows float32 parallel``."""
    args = [a for a in variant.args if not isinstance(a, bool)]
    names = {"xent": ("weight", "grad", "temperature"),
             "lse": ("b", "where", "sign")}.get(variant.family, ())
    flags = [a for a in variant.args[:-1] if isinstance(a, bool)]
    words = {"xent": ["cross_entropy"], "topk": ["softmax_topk"],
             "segment": ["segment"]}.get(variant.family, [])
    words += [{"lse": "logsumexp", "lse_backward": "logsumexp_backward"}.get(a, str(a))
              for a in args]
    words += [w for w, on in zip(names, flags) if on]
    words.append(_par(variant.args[-1]))
    return " ".join(w.replace("uint16", "float16") for w in words if w)
