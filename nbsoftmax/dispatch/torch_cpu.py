"""torch CPU tensors in, torch tensors out, without a copy either way.

A CPU tensor's memory is viewed as a NumPy array (``Tensor.numpy()``: same buffer, same
strides, same dtype), the call runs on those views as on any host array, and each array the
call returns is handed back as a tensor over the same memory (``torch.from_numpy``); an
``out=`` tensor is returned itself. So ``softmax(t)`` of a float32 tensor is a float32 tensor
and ``softmax(t, out=t)`` writes into ``t``. CUDA tensors never come here: they take the GPU
path (``nbsoftmax.cuda._arrays``), which likewise returns tensors.

torch is never imported by nbsoftmax: a tensor can only exist once its caller imported torch,
so ``sys.modules`` is asked (one dict lookup on the general path, nothing on the fast path).
Tensors that require grad are refused: nbsoftmax records nothing for autograd, and reading
their data would silently cut the graph.
"""

import sys

import numpy as np


def involved(*objs):
    """Whether any of objs is a torch tensor that is not on a CUDA device."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    tensor = torch.Tensor
    return any(isinstance(o, tensor) and not o.is_cuda for o in objs)


def as_numpy(t, name):
    """The NumPy view of CPU tensor t (argument ``name`` for messages)."""
    if t.requires_grad:
        raise TypeError(
            f"{name} is a torch tensor that requires grad; nbsoftmax records nothing for "
            f"autograd: pass {name}.detach() (the backward passes, e.g. softmax_backward, give "
            "the gradients)")
    if t.device.type != "cpu":
        raise TypeError(f"{name} is a torch tensor on device {t.device.type!r}; expected a CPU "
                        "tensor or a CUDA one")
    if t.is_neg() or t.is_conj():
        if name == "out":  # materialising would write the result into a copy
            raise TypeError("out is a torch tensor with a lazy negation or conjugation; "
                            "expected a plain tensor (out.resolve_neg())")
        t = t.resolve_neg().resolve_conj()  # a lazy negation (-t of a view): materialise it
    try:
        return t.numpy()
    except TypeError:  # bfloat16 and others NumPy has no dtype for
        raise TypeError(f"{name} is a torch tensor of dtype {t.dtype}, which NumPy cannot view; "
                        f"expected float16, float32, float64, bool or integers "
                        f"(e.g. {name}.float())") from None


def _as_tensor(torch, value):
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return value
    if not value.flags.writeable or any(s < 0 for s in value.strides):
        value = value.copy()  # torch has no read-only tensors nor negative strides
    return torch.from_numpy(value)


def call(compute, **arrays):
    """compute(**views) with every CPU tensor among arrays replaced by its NumPy view; the
    arrays it returns (one, or a tuple) come back as tensors, ``out``'s view as ``out``."""
    torch = sys.modules["torch"]
    views = {}
    for name, a in arrays.items():
        is_tensor = isinstance(a, torch.Tensor) and not a.is_cuda
        views[name] = as_numpy(a, name) if is_tensor else a
    result = compute(**views)
    out, out_view = arrays.get("out"), views.get("out")

    def back(value):
        if out_view is not None and value is out_view and isinstance(out, torch.Tensor):
            return out
        return _as_tensor(torch, value)

    if isinstance(result, tuple):
        return tuple(back(r) for r in result)
    return back(result)
