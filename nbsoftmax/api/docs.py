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


def sections(fn):
    """Fill fn's docstring placeholders with the shared sections (a decorator)."""
    fn.__doc__ = fn.__doc__.replace("{device}", DEVICE)
    return fn
