"""Which backend runs a call: ``nbsoftmax.cpu``, or ``nbsoftmax.cuda`` (imported on first use).

A leaf of the dispatch: every dispatch module that makes plans asks here where they run.
"""

from . import temperature as _temperature
from .plan import is_device_array

_cpu = None  # nbsoftmax.cpu once imported: an import statement per call costs ~0.15 us
_cuda = None  # nbsoftmax.cuda once imported (~2 us per call under cProfile as a statement)


def backend(device):
    """The backend module that runs plans for device ("cpu" or "cuda")."""
    global _cpu, _cuda
    if device == "cuda":
        if _cuda is None:
            from .. import cuda  # on the first GPU call only: nothing probes a device at import

            _cuda = cuda
        return _cuda
    if _cpu is None:
        from .. import cpu

        _cpu = cpu
    return _cpu


def on_gpu(device, *arrays):
    """Whether this call runs on the GPU: device arrays given, or device="cuda" asked for."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f'device must be None, "cpu" or "cuda", not {device!r}')
    return device == "cuda" or any(is_device_array(a) for a in arrays)


def temperature_scale(temperature, sign=1.0):
    """The validated temperature and sign (softmin: -1), a ``temperature.Temperature``: its
    ``.scaling(dtype)`` is the scaled kernels' parameter."""
    return _temperature.Temperature(temperature, sign)
