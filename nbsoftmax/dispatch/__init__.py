"""The dispatch layer: a call's arguments checked, normalised and handed to a backend.

Internal: the public names are those of ``nbsoftmax`` (and ``nbsoftmax.segment``). One module
per idea: ``core`` (the softmax family, losses, top-k), ``logsumexp`` (``b=``/``return_sign=``
and its backward), ``segment`` and ``sparse`` (ragged rows), and the argument rules they share:
``args`` (scalars and keywords), ``dtypes``, ``layout`` (any axes as ``(outer, n, inner)``),
``temperature``, ``xent`` (cross-entropy targets and weights), ``scalars`` (0-d results) and
``torch_cpu`` (torch CPU tensors without a copy).
"""
