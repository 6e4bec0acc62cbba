"""The benchmark issue's CPU targets, summarised from `nbsoftmax bench --json FILE`.

Run: ``nbsoftmax bench --full --ops softmax log_softmax softmax_backward log_softmax_backward
--dtypes float32 float64 --json bench.json && python benchmarks/targets.py bench.json``.
Prints, per operation and dtype, the geometric-mean and minimum speedups over each peer, the
fraction of copy bandwidth on DRAM-sized inputs, log_softmax's time over softmax's, and the
non-last-axis rate against the last-axis one; then every figure of the CPU speed table of
issue 15 (``nbsoftmax.cli.bench_report.issue_figures``) with the ISA the run was compiled for.
"""
import json, math, sys
d = json.load(open(sys.argv[1]))
R = d['results']
def gm(v): return math.exp(sum(math.log(x) for x in v)/len(v))
def sel(op, dt, last=True):
    return [r for r in R if r['op']==op and r['dtype']==dt and ((r['axis']==-1) == last)]
for dt in ('float32','float64'):
  for op in ('softmax','log_softmax','softmax_backward','log_softmax_backward'):
    rs = sel(op, dt) + sel(op, dt, False)
    if not rs: continue
    t = [r['speedup'].get('torch') for r in rs]; to = [r['speedup'].get('torch out=') for r in rs]
    sc = [r['speedup'].get('scipy') for r in rs if 'scipy' in r['speedup']]
    jx = [r['speedup'].get('jax.jit') for r in rs]
    print(f"{op:22s} {dt}: x torch geomean {gm(t):.2f} (min {min(t):.2f}), x torch out= geomean {gm(to):.2f} (min {min(to):.2f})" + (f", x scipy geomean {gm(sc):.2f} (min {min(sc):.2f})" if sc else "") + f", x jax geomean {gm(jx):.2f} (min {min(jx):.2f})")
    big = [r for r in rs if r['bytes_moved'] / (2 if 'backward' not in op else 3) >= 64e6]
    print("    DRAM-sized (>=64MB input) of copy: " + ", ".join(f"{'x'.join(map(str,r['shape']))}:{r['of_copy']:.2f}" for r in big))
# log_softmax vs softmax
for dt in ('float32','float64'):
    sm = {(tuple(r['shape']), r['axis']): r for r in R if r['op']=='softmax' and r['dtype']==dt}
    ls = {(tuple(r['shape']), r['axis']): r for r in R if r['op']=='log_softmax' and r['dtype']==dt}
    print(dt, "log_softmax time / softmax time (out=):", ", ".join(f"{'x'.join(map(str,k[0]))}/{k[1]}:{ls[k]['times_s']['nbsoftmax out=']/sm[k]['times_s']['nbsoftmax out=']:.2f}" for k in sm if k in ls))
    for op in ('softmax','log_softmax'):
        rr = {(tuple(r['shape']), r['axis']): r for r in R if r['op']==op and r['dtype']==dt}
        a = rr.get(((4096,1000),0)); b = rr.get(((4096,1000),-1))
        c = rr.get(((32,1000,1024),1))
        if a and b: print(f"  {op} non-last/last (4096x1000): {a['gb_per_s_out']/b['gb_per_s_out']:.2f}; x torch axis0 {a['speedup']['torch']:.2f}, axis1 3d x torch {c['speedup']['torch']:.2f}")

from nbsoftmax.cli.bench_report import issue_figures  # noqa: E402
print("\n".join(issue_figures(R, d.get('machine', {}).get('isa', 'an ISA not recorded'))))
