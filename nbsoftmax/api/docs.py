"""The numpydoc sections that several public functions share, written once.

``sections`` fills the placeholders of a docstring (``{device}``: the ``device`` and ``stream``
parameters) when the function is defined, so ``help()`` and the doctests see the whole text.
"""

DEVICE = '''device : {None, "cpu", "cuda"}, optional
        Where to compute. None: on the GPU for CUDA device arrays (objects exposing
        ``__cuda_array_interface__``: numba, CuPy, torch CUDA), on the CPU for host arrays.
        "cuda" with host input copies it to the GPU and the result back.
    stream : optional
        CUDA stream to enqueue GPU work on (numba stream or a raw handle); by default the
        stream the input array exports, else the default stream. Ignored on the CPU.'''


BACKWARD = '''out : numpy.ndarray, optional
        Writable array of the result's shape and dtype; may be either input.
    where : array_like of bool, optional
        The mask the forward pass used: the gradient is exactly 0 at masked entries and
        the sums run over the unmasked ones only.
    temperature : float, optional
        The forward pass's temperature ``T``: the gradient is ``1 / T`` times the one above
        (divided without overflowing ``1 / T`` itself, for any ``T > 0``).'''

_SECTIONS = {"{device}": DEVICE, "{backward}": BACKWARD}


def sections(fn):
    """Fill fn's docstring placeholders with the shared sections (a decorator): ``{device}``
    (device, stream) and ``{backward}`` (the backward passes' out, where, temperature)."""
    for key, text in _SECTIONS.items():
        fn.__doc__ = fn.__doc__.replace(key, text)
    return fn
