"""``nbsoftmax info``: the threading layer, thread count, safety and kernel cache in use.

Starting Numba's threading layer is part of answering (the layer is chosen at its first
use), so this command does what a first parallel call would, and nothing more.
"""

import json


def collect():
    """A JSON-serialisable dict: versions, threading configuration and kernel cache."""
    import numba

    import nbsoftmax

    from .. import _threading
    from ..cpu import _cache

    info = {"nbsoftmax": nbsoftmax.__version__, "numba": numba.__version__}
    info.update(_threading.describe())
    info.update(_cache.describe())
    return info


def _yes_no(flag):
    return "yes" if flag else "no"


def format_text(info):
    layer = info["threading_layer"]
    if info["layer_thread_safe"]:
        thread_safe = "yes"
    else:
        thread_safe = (f"no ({layer} layer): nbsoftmax runs one parallel kernel at a time; "
                       "calls from other threads meanwhile run serial kernels")
    if info["layer_fork_safe"]:
        fork_safe = "yes"
    else:
        fork_safe = (f"no ({layer} layer, GNU OpenMP): nbsoftmax in forked children runs "
                     "serial kernels only")
    if info["forked_from_unsafe_parent"]:
        fork_safe += " [this process is such a child]"
    tbb = info["tbb_preloaded"] or "not loaded by nbsoftmax"
    priority = " > ".join(info["layer_priority"])
    lines = [
        f"nbsoftmax {info['nbsoftmax']} (numba {info['numba']})",
        f"threading layer : {layer} (NUMBA_THREADING_LAYER={info['configured_layer']}, "
        f"priority {priority})",
        f"libtbb          : {tbb}",
        f"threads         : {info['num_threads']} (NUMBA_NUM_THREADS={info['numba_num_threads']})",
        f"thread-safe     : {thread_safe}",
        f"fork-safe       : {fork_safe}",
        "kernel cache    : " + (f"{info['cache_dir']} ({info['cache_kind']})" if info["cache_dir"]
                                  else "none: kernels compile in memory in each process"),
    ]
    lines += [f"  passed over   : {note}" for note in info["cache_skipped"]]
    return "\n".join(lines)


def _run(args):
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_text(info))
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "info", help="print the threading layer, thread count, fork/thread safety and cache"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(func=_run)
