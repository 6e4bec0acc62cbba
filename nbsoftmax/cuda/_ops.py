"""Operation codes shared by the launch planner and the kernel factories.

Kernels receive the code as a compile-time constant, so each compiled variant keeps only
its own branch.
"""

SOFTMAX = 0
LOG_SOFTMAX = 1
LOGSUMEXP = 2
SOFTMAX_BACKWARD = 3
LOG_SOFTMAX_BACKWARD = 4

CODES = {
    "softmax": SOFTMAX,
    "log_softmax": LOG_SOFTMAX,
    "logsumexp": LOGSUMEXP,
    "softmax_backward": SOFTMAX_BACKWARD,
    "log_softmax_backward": LOG_SOFTMAX_BACKWARD,
}

BACKWARD = frozenset({"softmax_backward", "log_softmax_backward"})

# Phases of the block kernels: a whole row per block, or a row split over several blocks
# (STATS writes each block's partial statistics, APPLY merges a row's partials and writes).
FUSED = 0
STATS = 1
APPLY = 2
