"""Static GPU check: compile every kernel variant for chosen GPUs, without a GPU.

``python -m nbsoftmax.cuda.verify [--cc 8.0 9.0] [--json FILE]`` compiles each variant the
launcher can select (``_variants.all_keys()``: every op including ``where=`` /
``temperature=``, cross_entropy, top-k, the column and copy kernels; every dtype and
items-per-thread) to PTX with numba-cuda and libNVVM, assembles it with ``ptxas -v`` for
each compute capability, and checks, at the most threads per block the launcher may ask
of it (its launch bound):

- registers x threads fit the 64K-register file, allocated per warp in units of 256
  registers and to the 4 SM sub-partitions at once (warps rounded up to a multiple of 4,
  as ``cuda_occupancy.h`` models the hardware's launch check), and registers <= 255;
- static shared memory <= 48 KB;
- the thread count <= the kernel's ``.maxntid`` and 1024.

A variant that fails any of these is *unlaunchable* (the launch would fail with "too many
resources requested"). Per variant and architecture it prints registers, spill bytes,
shared memory, the threads asked and the most that can launch, the theoretical occupancy
at that thread count (``_sass.occupancy``: 65,536 registers, 2,048 threads, 228 KB (sm_90)
/ 164 KB (sm_80) of shared memory and 32 blocks per SM), SASS instructions per element of
the main loop, global reads and writes per element and the global loads/stores by width
(``ld 8x32 / st 8x32``: eight 32-bit loads, eight 32-bit stores; ``64``/``128``: vector
accesses, ``nc``: the read-only path) counted in the SASS, or in the PTX where no SASS was
made (the table says which). ``--metrics`` keeps the forward/backward kernels only.

Gates reported (``--json FILE`` writes exactly ``{"variants": int, "unlaunchable": [...],
"spilling": [...], "low_occupancy": [...], "extra_accesses": [...]}``; ``--rows-json FILE``
the table's rows): *spilling* (local-memory spills of the forward, backward and logsumexp
kernels), *low_occupancy* (block and split kernels under 50%), *extra_accesses* (warp and
block kernels whose threads load more than one element's worth per element they hold, or
store more: forward 1 read + 1 write, backward 2 reads + 1 write). The exit status is 1 only
for an unlaunchable variant; the CI test asserts the other lists empty.

SASS per element: for the kernels whose threads hold ``items`` elements in registers
(warp, block, split: fully unrolled) the growth of the instruction count from items/2 to
items, per added element; for loop kernels the instructions of the innermost loops that
load from global memory, summed over the passes: per loop iteration, which covers several
elements where the compiler unrolled the loop (an upper bound per element then).
Reads per element of the unrolled kernels are static: load bytes in the code over the bytes
of the ``items`` elements a thread holds; with no loop over the row, each instruction runs
once per element.

Needs numba-cuda with libNVVM and ``ptxas`` (``nvidia-nvvm``/``nvidia-cuda-nvcc`` wheels, the
``[test]`` extra, or a CUDA toolkit on ``CUDA_HOME``/``PATH``); ``nvdisasm`` is optional. The
CUDA simulator must be off. Work is spread over ``--jobs`` processes (default: CPU count).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from ._sass import (access_bits, find_tool, max_launchable_threads, occupancy,
                    parse_ptxas, ptx_memory, sass_profile, widths)

FORWARD_BACKWARD = ("warp", "block", "split", "columns", "scaled", "lse")
# Families whose threads hold ``items`` elements each in registers (unrolled main loop).
ITEM_FAMILIES = ("warp", "block", "split")
# --sass main: SASS for these families on sm_90 only (the CI gate's metrics, ~0.5 s each).
MAIN_SASS = ("warp", "block", "split", "columns", "lse")
MAX_STATIC_SHARED = 48 * 1024


# ------------------------------------------------------------------ worker


def _stub_device(cc):
    """Let numba-cuda compile device functions without a GPU: it asks the current device
    for its compute capability even when compiling for a given one (0.30)."""
    import types

    import numba.cuda.dispatcher as dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)


def _ptx_for(fn, signature, bounds, ccs):
    from numba import cuda

    try:
        from numba.cuda.compiler import _compile_pyfunc_with_fixup
    except ImportError:  # another numba-cuda: compile once per architecture
        return [cuda.compile_ptx(fn, signature, cc=cc, launch_bounds=bounds)[0] for cc in ccs]
    lib, _ = _compile_pyfunc_with_fixup(fn, signature, device=False, abi="numba", cc=ccs[0],
                                        launch_bounds=bounds)
    return [lib.get_asm_str(cc=cc) for cc in ccs]


def _work(args):
    """Compile and measure a list of variant keys for every cc (runs in a worker process)."""
    keys, ccs, unbounded, ptxas, nvdisasm, sass = args
    _stub_device(ccs[0])
    from . import _variants

    rows = []
    with tempfile.TemporaryDirectory(prefix="nbsoftmax-verify-") as tmp:
        for key in keys:
            fn, signature, bounds = _variants.source(key)
            ptxs = _ptx_for(fn, signature, None if unbounded else bounds, ccs)
            for cc, ptx in zip(ccs, ptxs):
                arch = f"sm_{cc[0]}{cc[1]}"
                src = os.path.join(tmp, "k.ptx")
                cubin = os.path.join(tmp, "k.cubin")
                with open(src, "w") as f:
                    f.write(ptx)
                run = subprocess.run([ptxas, "-v", f"-arch={arch}", src, "-o", cubin],
                                     capture_output=True, text=True)
                if run.returncode != 0:
                    raise RuntimeError(f"ptxas failed for {_variants.name(key)} ({arch}):\n"
                                       f"{run.stderr}")
                row = {"variant": _variants.name(key), "key": [str(k) for k in key],
                       "family": key[0], "arch": arch, **parse_ptxas(run.stderr)}
                row["maxntid"] = 1024 if unbounded else bounds[0]
                row["items"] = _variants.items_of(key)
                row["itemsize"] = _itemsize(key)
                row["memory"], row["memory_from"] = ptx_memory(ptx), "ptx"
                if nvdisasm and (sass == "all" or (arch == "sm_90" and key[0] in MAIN_SASS)):
                    listing = subprocess.run([nvdisasm, "-c", cubin], capture_output=True,
                                             text=True, check=True).stdout
                    profile = sass_profile(listing)
                    row["sass_total"], row["sass_loops"] = profile["total"], profile["loops"]
                    row["memory"], row["memory_from"] = profile["memory"], "sass"
                    row["loop_memory"] = profile["loop_memory"]
                rows.append(row)
    return rows


def _itemsize(key):
    """Bytes of one element of the variant's data arrays (None where not one dtype)."""
    import numpy as np

    last = key[-1]
    return np.dtype(last).itemsize if isinstance(last, np.dtype) else None


# ------------------------------------------------------------------ checks and report


def _requested(key, unbounded):
    """Most threads per block the launcher asks of variant key (with --unbounded: what it
    asked before the launch bounds, 1024 for the block and grid-strided kernels)."""
    from . import _variants

    bound = _variants.bounds(key)[0]
    if unbounded and key[0] in ("block", "split", "scaled", "xent", "topk", "lse"):
        return 1024
    return bound


def _per_element(rows):
    """Fill each row's per-element metrics.

    ``sass_per_element``: for the kernels whose threads hold ``items`` elements (warp,
    block, split; fully unrolled) the growth of the instruction count from items/2 to items
    per added element; for loop kernels the instructions of the loading loops (per
    iteration). ``reads_per_element`` / ``writes_per_element`` (items kernels): global bytes
    a thread loads / stores over the bytes of its ``items`` elements: 1.0 means one
    load instruction's worth per element, each element read once (the kernels have no loop
    over the row to read it again).
    """
    by_key = {(r["family"], tuple(r["key"][1:]), r["arch"]): r for r in rows}
    for r in rows:
        r["sass_per_element"] = r["reads_per_element"] = r["writes_per_element"] = None
        items = r.get("items")
        if items and r["itemsize"]:
            bits = items * r["itemsize"] * 8
            r["reads_per_element"] = round(access_bits(r["memory"], "load") / bits, 3)
            r["writes_per_element"] = round(access_bits(r["memory"], "store") / bits, 3)
        if "sass_total" not in r:
            continue
        if items:
            rest = r["key"][1:]
            at = rest.index(str(items))
            smaller = by_key.get((r["family"], (*rest[:at], str(items // 2), *rest[at + 1:]),
                                  r["arch"]))
            larger = by_key.get((r["family"], (*rest[:at], str(items * 2), *rest[at + 1:]),
                                 r["arch"]))
            if smaller is not None and "sass_total" in smaller:
                r["sass_per_element"] = round(
                    (r["sass_total"] - smaller["sass_total"]) / (items - items // 2), 1)
            elif larger is not None and "sass_total" in larger:
                r["sass_per_element"] = round((larger["sass_total"] - r["sass_total"]) / items, 1)
        else:
            r["sass_per_element"] = r["sass_loops"] or None


def _expected_accesses(key):
    """(reads, writes) per element a one-pass variant must make, or None where not gated.

    Forward warp/block kernels: the row is read once and written once; backward: g and y
    read once each, one write. The split kernels make one of the passes each (STATS reads,
    APPLY reads and writes, plus the merged row statistics: not gated per element).
    """
    from . import _ops

    if key[0] not in ("warp", "block"):
        return None
    return (2.0, 1.0) if key[1] in _ops.BACKWARD else (1.0, 1.0)


def check(rows, unbounded=False):
    """Mark each row's launchability and the CI gates.

    Returns a dict of lists: ``unlaunchable`` (the launch would fail), ``spilling`` (spills
    in the forward/backward/logsumexp families), ``low_occupancy`` (block/split kernels
    under 50% theoretical occupancy at their thread count) and ``extra_accesses`` (warp and
    block kernels reading or writing an element more than once).
    """
    from . import _variants

    keys = {_variants.name(k): k for k in _variants.all_keys()}
    found = {"unlaunchable": [], "spilling": [], "low_occupancy": [], "extra_accesses": []}
    for r in rows:
        key = keys[r["variant"]]
        r["requested_threads"] = requested = _requested(key, unbounded)
        r["max_threads"] = max_launchable_threads(r["registers"], r["maxntid"])
        arch = r["arch"] if r["arch"] in ("sm_80", "sm_90") else "sm_90"
        r["blocks_per_sm"], r["occupancy"] = occupancy(r["registers"], requested, r["shared"],
                                                       arch)
        problems = []
        if requested > r["max_threads"]:
            problems.append(f"{requested} threads x {r['registers']} registers exceed the "
                            f"register file (at most {r['max_threads']} threads)")
        if r["shared"] > MAX_STATIC_SHARED:
            problems.append(f"{r['shared']} bytes of static shared memory > 48 KB")
        r["problems"] = problems
        where = {"variant": r["variant"], "arch": r["arch"]}
        if problems:
            found["unlaunchable"].append({**where, "problems": problems})
        if r["spill_stores"] + r["spill_loads"] and r["family"] in FORWARD_BACKWARD:
            found["spilling"].append({**where, "spill_stores": r["spill_stores"],
                                      "spill_loads": r["spill_loads"]})
        if r["family"] in ("block", "split") and r["occupancy"] < 0.5:
            found["low_occupancy"].append({**where, "occupancy": r["occupancy"]})
        expected = _expected_accesses(key)
        got = (r["reads_per_element"], r["writes_per_element"])
        if expected is not None and got != expected:
            found["extra_accesses"].append({**where, "reads_writes_per_element": list(got),
                                            "expected": list(expected)})
    return found


def _table(rows):
    head = (f"{'variant':<44}{'arch':<7}{'regs':>5}{'spill B':>9}{'smem B':>8}{'threads':>9}"
            f"{'max':>6}{'occ':>6}{'SASS/elt':>10}{'rd/elt':>8}{'wr/elt':>8}  accesses")
    lines = [head, "-" * len(head)]
    for r in rows:
        def num(v):
            return "-" if v is None else v

        lines.append(
            f"{r['variant']:<44}{r['arch']:<7}{r['registers']:>5}"
            f"{r['spill_stores'] + r['spill_loads']:>9}{r['shared']:>8}"
            f"{r['requested_threads']:>9}{r['max_threads']:>6}{r['occupancy']:>6.2f}"
            f"{num(r['sass_per_element']):>10}{num(r['reads_per_element']):>8}"
            f"{num(r['writes_per_element']):>8}  {widths(r['memory'])} ({r['memory_from']})"
            f"{'  UNLAUNCHABLE' if r['problems'] else ''}")
    return "\n".join(lines)


def verify(ccs=((8, 0), (9, 0)), jobs=None, unbounded=False, select=(), sass="all"):
    """Compile and check every variant (or those whose name contains one of the ``select``
    strings) for each compute capability; returns the report dict.

    ``sass``: "all" (nvdisasm on every variant), "main" (sm_90 of the warp, block, split,
    column and logsumexp kernels: what the CI gates read) or "none" (global accesses
    counted from the PTX).

    Raises RuntimeError when ptxas (or libNVVM) is missing or the CUDA simulator is on.
    """
    if sass is True or sass is False:  # the older boolean form
        sass = "all" if sass else "none"
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        raise RuntimeError("the CUDA simulator is on (NUMBA_ENABLE_CUDASIM); the static check "
                           "compiles real kernels: run it with the variable unset")
    from . import _runtime, _variants

    if _runtime.cuda is None or _runtime.SIMULATOR:
        raise RuntimeError("numba-cuda (without the simulator) is needed to compile kernels")
    problem = _runtime.toolchain_problem()
    if problem is not None:
        raise RuntimeError(f"cannot compile: {problem}; pip install \"nbsoftmax[test]\"")
    from numba.cuda.cudadrv import nvrtc

    supported = nvrtc.get_supported_ccs()
    for cc in ccs:
        if tuple(cc) not in supported:
            raise RuntimeError(
                f"this CUDA toolkit cannot compile for compute capability {cc[0]}.{cc[1]} (it "
                f"supports {', '.join(f'{a}.{b}' for a, b in supported)}); CUDA 13 starts at "
                "7.5, use the CUDA 12 wheels for 7.0")
    ptxas = find_tool("ptxas")
    if ptxas is None:
        raise RuntimeError("ptxas was not found (pip install nvidia-cuda-nvcc, or set CUDA_HOME)")
    nvdisasm = find_tool("nvdisasm") if sass != "none" else None
    keys = [k for k in _variants.all_keys()
            if not select or any(text in _variants.name(k) for text in select)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(keys)))
    # interleave so that each worker gets a share of the slow (large) variants
    parts = [(keys[i::jobs], list(ccs), unbounded, ptxas, nvdisasm, sass) for i in range(jobs)]
    started = time.perf_counter()
    if jobs == 1:
        results = [_work(parts[0])]
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.map(_work, parts)
    order = {_variants.name(k): i for i, k in enumerate(keys)}
    rows = sorted((r for part in results for r in part), key=lambda r: (order[r["variant"]],
                                                                         r["arch"]))
    _per_element(rows)
    found = check(rows, unbounded)
    return {"variants": len(keys), **found, "rows": rows,
            "seconds": round(time.perf_counter() - started, 1)}


REPORT_KEYS = ("variants", "unlaunchable", "spilling", "low_occupancy", "extra_accesses")


def main(argv=None):
    """Command line: see the module docstring. Returns the exit status.

    0 when every variant can launch, 1 when one cannot, 2 when nothing could be checked
    (no toolchain, the simulator on, an architecture the toolkit cannot target).

    Examples
    --------
    A shell, with the ``[test]`` extra installed (a few minutes on 2 cores)::

        python -m nbsoftmax.cuda.verify --cc 8.0 9.0 --json verify.json
        python -m nbsoftmax.cuda.verify --metrics --cc 9.0 --select float32
    """
    parser = argparse.ArgumentParser(prog="python -m nbsoftmax.cuda.verify",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cc", nargs="+", default=["8.0", "9.0"],
                        help="compute capabilities to compile for (default: 8.0 9.0)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--rows-json", metavar="FILE", help="write the table's rows as JSON")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes")
    parser.add_argument("--select", metavar="TEXT", action="append",
                        help="only variants whose name has TEXT (repeatable)")
    parser.add_argument("--sass", choices=("all", "main", "none"), default="all",
                        help="which variants to disassemble (nvdisasm: ~0.5 s each): all, "
                             "main (sm_90 warp/block/split/columns/lse), none (PTX counts)")
    parser.add_argument("--no-sass", action="store_const", dest="sass", const="none",
                        help="same as --sass none")
    parser.add_argument("--metrics", action="store_true",
                        help="print only the forward/backward kernels' metrics table "
                             "(warp, block, split, columns, lse) and the gate summary")
    parser.add_argument("--unbounded", action="store_true",
                        help="compile without launch bounds and check the thread counts the "
                             "launcher asked before it had them (diagnosis)")
    args = parser.parse_args(argv)
    try:
        ccs = tuple(tuple(int(p) for p in c.split(".")) for c in args.cc)
    except ValueError:
        parser.error(f"--cc takes versions like 8.0 or 9.0, not {args.cc}")
    try:
        report = verify(ccs, args.jobs, args.unbounded, args.select, args.sass)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = report["rows"]
    if args.metrics:
        rows = [r for r in rows if r["family"] in MAIN_SASS]
    print(_table(rows))
    print(f"\n{report['variants']} variants x {len(ccs)} architectures in "
          f"{report['seconds']} s: {len(report['unlaunchable'])} unlaunchable, "
          f"{len(report['spilling'])} spilling, {len(report['low_occupancy'])} block/split "
          f"under 50% occupancy, {len(report['extra_accesses'])} warp/block reading or "
          "writing an element more than once")
    for name in REPORT_KEYS[1:]:
        for u in report[name]:
            print(f"{name.upper()} {u['variant']} {u['arch']}: "
                  f"{'; '.join(u['problems']) if 'problems' in u else u}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: report[k] for k in REPORT_KEYS}, f, indent=1)
    if args.rows_json:
        with open(args.rows_json, "w") as f:
            json.dump(report["rows"], f, indent=1)
    return 1 if report["unlaunchable"] else 0


if __name__ == "__main__":
    sys.exit(main())
