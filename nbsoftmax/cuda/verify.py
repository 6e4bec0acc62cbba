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
resources requested"). Local-memory spills of the forward, backward and logsumexp kernels
are listed as *spilling*. It prints one row per variant and architecture (registers, spill
bytes, shared memory, the most threads that can launch, and SASS instructions per element
of the main loop when ``nvdisasm`` is available) and exits 1 if any variant is
unlaunchable. ``--json FILE`` writes exactly ``{"variants": int, "unlaunchable": [...],
"spilling": [...]}``; ``--rows-json FILE`` the table's rows.

SASS per element: for the kernels whose threads hold ``items`` elements in registers
(warp, block: fully unrolled) the growth of the instruction count from items/2 to items,
per added element; for loop kernels the instructions of the innermost loops that load
from global memory, summed over the passes: per loop iteration, which covers several
elements where the compiler unrolled the loop (an upper bound per element then).

Needs numba-cuda with libNVVM and ``ptxas`` (``nvidia-nvvm``/``nvidia-cuda-nvcc`` wheels, the
``[test]`` extra, or a CUDA toolkit on ``CUDA_HOME``/``PATH``); ``nvdisasm`` is optional. The
CUDA simulator must be off. Work is spread over ``--jobs`` processes (default: CPU count).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REGISTER_FILE = 65_536  # per block and per SM, sm_70 .. sm_90
REGISTER_UNIT = 256  # registers are allocated per warp in units of 256
SUB_PARTITIONS = 4
MAX_REGISTERS = 255
MAX_STATIC_SHARED = 48 * 1024
FORWARD_BACKWARD = ("warp", "block", "columns", "scaled")


def find_tool(name):
    """Path of CUDA binary utility ``name`` (ptxas, nvdisasm) or None.

    Looks in the NVIDIA toolkit wheels (cuda-pathfinder), ``CUDA_HOME``/``CUDA_PATH`` and
    ``PATH``.

    Examples
    --------
    >>> find_tool("no-such-tool") is None
    True
    """
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility(name)
        if found:
            return found
    except Exception:  # noqa: BLE001 - an older cuda-pathfinder: look on the usual paths
        pass
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and os.path.exists(os.path.join(root, "bin", name)):
            return os.path.join(root, "bin", name)
    return shutil.which(name)


def max_launchable_threads(registers, maxntid=1024):
    """Most threads per block (a warp multiple) a kernel of ``registers`` per thread takes.

    Parameters
    ----------
    registers : int
        Registers per thread (``ptxas -v``).
    maxntid : int
        The kernel's launch bound (``.maxntid``), 1024 without one.

    Returns
    -------
    int
        0 when not even one warp fits.

    Examples
    --------
    >>> max_launchable_threads(64), max_launchable_threads(74), max_launchable_threads(96)
    (1024, 768, 640)
    """
    per_warp = -(-max(registers, 1) * 32 // REGISTER_UNIT) * REGISTER_UNIT
    warps = 0
    for w in range(1, 33):
        if -(-w // SUB_PARTITIONS) * SUB_PARTITIONS * per_warp <= REGISTER_FILE:
            warps = w
    if registers > MAX_REGISTERS:
        warps = 0
    return min(warps * 32, maxntid // 32 * 32, 1024)


_PTXAS_REGS = re.compile(r"Used (\d+) registers")
_PTXAS_SMEM = re.compile(r"(\d+) bytes smem")
_PTXAS_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_STACK = re.compile(r"(\d+) bytes stack frame")


def parse_ptxas(text):
    """Registers, static shared memory, spill and stack bytes from ``ptxas -v`` output.

    Examples
    --------
    >>> parse_ptxas("Used 40 registers, used 1 barriers, 256 bytes smem")["registers"]
    40
    """
    regs = _PTXAS_REGS.search(text)
    smem = _PTXAS_SMEM.search(text)
    spill = _PTXAS_SPILL.search(text)
    stack = _PTXAS_STACK.search(text)
    if regs is None:
        raise RuntimeError(f"ptxas -v printed no register count:\n{text}")
    return {"registers": int(regs.group(1)), "shared": int(smem.group(1)) if smem else 0,
            "spill_stores": int(spill.group(1)) if spill else 0,
            "spill_loads": int(spill.group(2)) if spill else 0,
            "stack": int(stack.group(1)) if stack else 0}


_SASS = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_TARGET = re.compile(r"\((\.L_x_\d+)\)")


def sass_profile(text):
    """(instructions, instructions of the innermost global-loading loops) of nvdisasm output."""
    body = []
    labels = {}
    for line in text.splitlines():
        label = _LABEL.match(line.strip())
        if label:
            labels[label.group(1)] = len(body)
            continue
        m = _SASS.search(line)
        if m and m.group(3) != "NOP":
            body.append((m.group(3), m.group(4)))
    # the trailing `BRA self` after EXIT is padding, not code
    while body and body[-1][0] == "BRA" and body[-1][1].strip().startswith("`(.L_x"):
        target = _TARGET.search(body[-1][1])
        if target is None or labels.get(target.group(1)) != len(body) - 1:
            break
        body.pop()
    loops = []
    for i, (opcode, rest) in enumerate(body):
        target = _TARGET.search(rest) if opcode.startswith("BRA") else None
        if target and labels.get(target.group(1), i + 1) <= i:
            loops.append((labels[target.group(1)], i))
    innermost = [(a, b) for a, b in loops
                 if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    loading = [(a, b) for a, b in innermost
               if any(op.startswith("LDG") for op, _ in body[a:b + 1])]
    return len(body), sum(b - a + 1 for a, b in loading)


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
    keys, ccs, unbounded, ptxas, nvdisasm = args
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
                if nvdisasm:
                    sass = subprocess.run([nvdisasm, "-c", cubin], capture_output=True,
                                          text=True, check=True).stdout
                    row["sass_total"], row["sass_loops"] = sass_profile(sass)
                rows.append(row)
    return rows


# ------------------------------------------------------------------ checks and report


def _requested(key, unbounded):
    """Most threads per block the launcher asks of variant key (with --unbounded: what it
    asked before the launch bounds, 1024 for the block and grid-strided kernels)."""
    from . import _variants

    bound = _variants.BOUNDS[key[0]][0]
    if unbounded and key[0] in ("block", "scaled", "xent", "topk"):
        return 1024
    return bound


def _per_element(rows):
    """SASS instructions per element of the main loop, filled into each row."""
    by_key = {(r["family"], tuple(r["key"][1:]), r["arch"]): r for r in rows}
    for r in rows:
        if "sass_total" not in r:
            r["sass_per_element"] = None
            continue
        if r["family"] in ("warp", "block"):
            items = int(r["key"][2])
            rest = r["key"][1:]
            smaller = by_key.get((r["family"], (rest[0], str(items // 2), *rest[2:]), r["arch"]))
            larger = by_key.get((r["family"], (rest[0], str(items * 2), *rest[2:]), r["arch"]))
            if smaller is not None:
                r["sass_per_element"] = round(
                    (r["sass_total"] - smaller["sass_total"]) / (items - items // 2), 1)
            elif larger is not None:
                r["sass_per_element"] = round((larger["sass_total"] - r["sass_total"]) / items, 1)
            else:
                r["sass_per_element"] = None
        else:
            r["sass_per_element"] = r["sass_loops"] or None


def check(rows, unbounded=False):
    """Mark each row's launchability and spills; returns (unlaunchable, spilling) lists."""
    from . import _variants

    keys = {_variants.name(k): k for k in _variants.all_keys()}
    unlaunchable, spilling = [], []
    for r in rows:
        key = keys[r["variant"]]
        r["requested_threads"] = requested = _requested(key, unbounded)
        r["max_threads"] = max_launchable_threads(r["registers"], r["maxntid"])
        problems = []
        if requested > r["max_threads"]:
            problems.append(f"{requested} threads x {r['registers']} registers exceed the "
                            f"register file (at most {r['max_threads']} threads)")
        if r["shared"] > MAX_STATIC_SHARED:
            problems.append(f"{r['shared']} bytes of static shared memory > 48 KB")
        r["problems"] = problems
        if problems:
            unlaunchable.append({"variant": r["variant"], "arch": r["arch"],
                                 "problems": problems})
        spills = r["spill_stores"] + r["spill_loads"]
        if spills and r["family"] in FORWARD_BACKWARD:
            spilling.append({"variant": r["variant"], "arch": r["arch"],
                             "spill_stores": r["spill_stores"], "spill_loads": r["spill_loads"]})
    return unlaunchable, spilling


def _table(rows):
    head = (f"{'variant':<44}{'arch':<7}{'regs':>5}{'spill B':>9}{'smem B':>8}{'threads':>9}"
            f"{'max':>6}{'SASS/elt':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        per = r.get("sass_per_element")
        lines.append(
            f"{r['variant']:<44}{r['arch']:<7}{r['registers']:>5}"
            f"{r['spill_stores'] + r['spill_loads']:>9}{r['shared']:>8}"
            f"{r['requested_threads']:>9}{r['max_threads']:>6}"
            f"{'-' if per is None else per:>10}{'  UNLAUNCHABLE' if r['problems'] else ''}")
    return "\n".join(lines)


def verify(ccs=((8, 0), (9, 0)), jobs=None, unbounded=False, select=(), sass=True):
    """Compile and check every variant (or those whose name contains one of the ``select``
    strings) for each compute capability; returns the report dict.

    Raises RuntimeError when ptxas (or libNVVM) is missing or the CUDA simulator is on.
    """
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
    nvdisasm = find_tool("nvdisasm") if sass else None
    keys = [k for k in _variants.all_keys()
            if not select or any(text in _variants.name(k) for text in select)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(keys)))
    # interleave so that each worker gets a share of the slow (large) variants
    parts = [(keys[i::jobs], list(ccs), unbounded, ptxas, nvdisasm) for i in range(jobs)]
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
    unlaunchable, spilling = check(rows, unbounded)
    return {"variants": len(keys), "unlaunchable": unlaunchable, "spilling": spilling,
            "rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None):
    """Command line: see the module docstring. Returns the exit status.

    0 when every variant can launch, 1 when one cannot, 2 when nothing could be checked
    (no toolchain, the simulator on, an architecture the toolkit cannot target).

    Examples
    --------
    A shell, with the ``[test]`` extra installed (about 2 minutes on 2 cores)::

        python -m nbsoftmax.cuda.verify --cc 8.0 9.0 --json verify.json
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
    parser.add_argument("--no-sass", action="store_true",
                        help="skip the SASS instruction counts (nvdisasm: ~0.5 s per variant)")
    parser.add_argument("--unbounded", action="store_true",
                        help="compile without launch bounds and check the thread counts the "
                             "launcher asked before it had them (diagnosis)")
    args = parser.parse_args(argv)
    try:
        ccs = tuple(tuple(int(p) for p in c.split(".")) for c in args.cc)
    except ValueError:
        parser.error(f"--cc takes versions like 8.0 or 9.0, not {args.cc}")
    try:
        report = verify(ccs, args.jobs, args.unbounded, args.select, not args.no_sass)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_table(report["rows"]))
    print(f"\n{report['variants']} variants x {len(ccs)} architectures in "
          f"{report['seconds']} s: {len(report['unlaunchable'])} unlaunchable, "
          f"{len(report['spilling'])} spilling (forward/backward/logsumexp kernels)")
    for u in report["unlaunchable"]:
        print(f"UNLAUNCHABLE {u['variant']} {u['arch']}: {'; '.join(u['problems'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: report[k] for k in ("variants", "unlaunchable", "spilling")}, f,
                      indent=1)
    if args.rows_json:
        with open(args.rows_json, "w") as f:
            json.dump(report["rows"], f, indent=1)
    return 1 if report["unlaunchable"] else 0


if __name__ == "__main__":
    sys.exit(main())
