"""Prints, after a benchmark run, GB/s and speedup ratios per case from the same run."""


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benches = getattr(session, "benchmarks", None) if session else None
    if not benches:
        return
    groups = {}
    for bench in benches:
        info = bench.extra_info
        if "impl" in info:
            groups.setdefault(bench.group, {})[info["impl"]] = (bench.stats.median, info["bytes_moved"])
    write = terminalreporter.write_line
    write("")
    write("GB/s = bytes read + written / median time; x PEER = peer time / nbsoftmax time "
          "(out= peers against nbsoftmax out=); of copy = nbsoftmax out= / fastest copy")
    for group, impls in groups.items():
        if "nbsoftmax" not in impls:
            continue
        copy = max((impls[c][1] / impls[c][0] for c in ("np.copyto", "copy (threads)") if c in impls),
                   default=float("nan"))
        base, moved = impls["nbsoftmax"]
        base_out = impls.get("nbsoftmax out=", impls["nbsoftmax"])[0]
        parts = [f"nbsoftmax {moved / base / 1e9:.1f} GB/s", f"out= {moved / base_out / 1e9:.1f} GB/s",
                 f"of copy {moved / base_out / copy:.2f}"]
        for name, (t, _) in impls.items():
            if name.startswith("nbsoftmax") or name in ("np.copyto", "copy (threads)"):
                continue
            parts.append(f"x {name} {t / (base_out if name.endswith('out=') else base):.2f}")
        write(f"{group}: " + ", ".join(parts))
