"""The dispatch layer: a call's arguments checked and normalised once, into a plan for a backend.

Internal: the public names are those of ``nbsoftmax`` (and ``nbsoftmax.segment``). One module
per idea: ``plan`` (the immutable ``Plan`` a backend runs, and the descriptors of device
arrays), ``core`` (the softmax family and the plain logsumexp), ``logsumexp`` (``b=``/
``return_sign=`` and its backward), ``loss`` (cross_entropy), ``topk`` (softmax_topk),
``device`` and ``device_reductions`` (the plans of GPU calls), ``backends`` (which backend runs
a plan), ``arrays`` (the rules of host arrays: conversion, axes, ``out``, ``where``, staging),
``segment`` and ``sparse`` (ragged rows), and the argument rules they share: ``args`` (scalars
and keywords), ``dtypes``, ``layout`` (any axes as ``(outer, n, inner)``), ``temperature``,
``xent`` (cross-entropy targets and weights), ``scalars`` (0-d results) and ``torch_cpu``
(torch CPU tensors without a copy).
"""
