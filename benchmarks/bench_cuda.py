"""GPU benchmark: ``python benchmarks/bench_cuda.py [--quick] [--dtypes float32,float16] [--json FILE]``.

The suite lives in ``nbsoftmax.cuda._bench`` so that ``nbsoftmax bench --device cuda`` runs it
from an installed package too; see its docstring for what is measured.
"""

import sys

from nbsoftmax.cuda._bench import main

if __name__ == "__main__":
    sys.exit(main())
