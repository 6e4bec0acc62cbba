"""The public functions: signatures and numpydoc docstrings, re-exported by ``nbsoftmax``.

``softmax`` (softmax, log_softmax, softmin and their gradients) and ``reductions``
(logsumexp and its gradient, cross_entropy, softmax_topk); ``docs`` holds the docstring
sections they share. Each function checks only its keyword names and hands the call to
``nbsoftmax.dispatch``.
"""
