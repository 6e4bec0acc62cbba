"""End-to-end throughput of ``nbsoftmax score`` against ``cp`` of the same file, same disk.

Writes a float32 ``.npy`` of ``--gb`` GB (default 2) into ``--dir`` (default: a scratch
directory under the system temp dir), then alternates ``cp INPUT COPY`` and ``nbsoftmax score
INPUT -o OUTPUT`` ``--repeat`` times, each a fresh process timed by wall clock, the output
deleted between runs. Both read the same input (cached by the first pass, as for every run
after the first) and write a file of the same size on the same file system; neither syncs.
The score time includes everything a user waits for: Python start-up, imports, loading the
kernels, reading, computing, writing and the rename. ``sync`` runs (untimed) before every
run, so that none pays for writing back the previous one's pages; the times still vary
with the kernel's dirty-page writeback (and other load), hence the median of several runs.

Throughput is input GB / wall seconds for both; the ratio is score / cp. Peak RSS of each
score run is its child rusage (``os.wait4``). The machine should be quiet: the script prints
the 1-minute load average first and warns above 1.

Usage::

    python benchmarks/score_throughput.py [--gb 2] [--cols 1000] [--repeat 3]
        [--memory-limit 1GB] [--dir DIR] [--keep] [--json]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_input(path, gb, cols):
    """Header, then 32 MB blocks written with tofile: nothing mapped, so this process stays
    small (a child's ru_maxrss starts from its parent's peak, which would skew the figures)."""
    rows = int(gb * 1e9) // (4 * cols)
    block = (np.random.default_rng(0).standard_normal((8192, cols), dtype=np.float32) * 4)
    header = {"descr": np.lib.format.dtype_to_descr(block.dtype), "fortran_order": False,
              "shape": (rows, cols)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, rows, 8192):
            block[: min(rows, start + 8192) - start].tofile(f)
    return rows


def timed(command):
    """(wall seconds, peak RSS bytes) of a child process; fails on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode:
        raise SystemExit(f"{command[0]} failed ({proc.returncode}): {stderr}")
    return seconds, usage.ru_maxrss * 1024, stderr.strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="input size in GB (1e9 bytes)")
    parser.add_argument("--cols", type=int, default=1000, help="row length (softmax axis)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--dir", help="where the files go (default: a new temp directory)")
    parser.add_argument("--keep", action="store_true", help="keep the input for the next run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f}" + ("  (busy machine: figures will be low)"
                                                 if load > 1 else ""), file=sys.stderr)
    directory = args.dir or tempfile.mkdtemp(prefix="nbsoftmax-score-bench-")
    os.makedirs(directory, exist_ok=True)
    src = os.path.join(directory, f"logits_{args.gb:g}gb_{args.cols}.npy")
    copy, out = os.path.join(directory, "copy.npy"), os.path.join(directory, "scored.npy")
    if not os.path.exists(src):
        make_input(src, args.gb, args.cols)
    nbytes = os.path.getsize(src)
    rows = (nbytes - 128) // (4 * args.cols)
    score = [sys.executable, "-m", "nbsoftmax", "score", src, "-o", out, "--overwrite",
             "--memory-limit", args.memory_limit]
    cp_runs, score_runs, peaks, summary = [], [], [], ""
    try:
        subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # cache the input
        for _ in range(args.repeat):
            os.sync()  # each run starts with no dirty pages of the previous one to write back
            seconds, _, _ = timed(["cp", src, copy])
            cp_runs.append(seconds)
            os.unlink(copy)
            os.sync()
            seconds, peak, summary = timed(score)
            score_runs.append(seconds)
            peaks.append(peak)
            os.unlink(out)
    finally:
        for path in (copy, out) + (() if args.keep else (src,)):
            if os.path.exists(path):
                os.unlink(path)
        if not args.keep and not args.dir:
            shutil.rmtree(directory, ignore_errors=True)

    cp_s, score_s = statistics.median(cp_runs), statistics.median(score_runs)
    result = {
        "input_bytes": nbytes, "rows": rows, "cols": args.cols, "load_average": load,
        "cp_seconds": cp_runs, "score_seconds": score_runs,
        "cp_gb_per_s": nbytes / 1e9 / cp_s, "score_gb_per_s": nbytes / 1e9 / score_s,
        "ratio": cp_s / score_s, "best_ratio": min(cp_runs) / min(score_runs),
        "score_peak_rss_bytes": max(peaks), "peaks": peaks,
        "memory_limit": args.memory_limit, "last_summary": summary,
        "command": " ".join(score),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"input: {nbytes / 1e9:.2f} GB float32, {rows:,} rows x {args.cols}")
    print(f"cp             : median {cp_s:.2f} s  {result['cp_gb_per_s']:.2f} GB/s   "
          f"runs {', '.join(f'{s:.2f}' for s in cp_runs)}")
    print(f"nbsoftmax score: median {score_s:.2f} s  {result['score_gb_per_s']:.2f} GB/s   "
          f"runs {', '.join(f'{s:.2f}' for s in score_runs)}")
    print(f"score / cp throughput: {result['ratio']:.0%} (medians; best runs "
          f"{result['best_ratio']:.0%})   peak RSS of score "
          f"{max(peaks) / 1e6:.0f} MB (--memory-limit {args.memory_limit})")
    print(f"last score summary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
