"""``nbsoftmax warmup``: compile every CPU kernel into the on-disk cache ahead of time.

For container images and deployments: run it once where the cache directory will persist
(``NUMBA_CACHE_DIR``, or the package's ``__pycache__`` when writable), and later processes
load kernels instead of compiling them on their first call.
"""

import time

_DTYPES = ("float32", "float64", "float16")
_OPS = ("softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward")


def _run(args):
    import nbsoftmax

    from ..cpu import _cache

    start = time.perf_counter()
    nbsoftmax.precompile(dtypes=args.dtype or _DTYPES, ops=args.op or None)
    seconds = time.perf_counter() - start
    where = _cache.cache_dir() or "nowhere (no writable cache directory)"
    print(f"compiled or loaded {', '.join(args.op or _OPS)} for {', '.join(args.dtype or _DTYPES)}"
          f" in {seconds:.1f} s; cached in {where}")
    return 0


def add_parser(sub):
    parser = sub.add_parser("warmup", help="compile all CPU kernels into the on-disk cache")
    parser.add_argument("--dtype", action="append", choices=_DTYPES,
                        help="only this dtype (repeatable; default: all)")
    parser.add_argument("--op", action="append", choices=_OPS,
                        help="only this operation (repeatable; default: all)")
    parser.set_defaults(func=_run)
