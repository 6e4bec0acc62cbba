"""``python -m nbsoftmax`` / ``nbsoftmax``: a short demonstration (the benchmark issue
replaces it with ``nbsoftmax bench``)."""

import sys


def main(argv=None):
    import numpy as np

    import nbsoftmax

    np.set_printoptions(precision=4, suppress=True)
    print("softmax([1, 2, 3])           ->", nbsoftmax.softmax([1.0, 2.0, 3.0]))
    print("log_softmax([1000, 1])       ->", nbsoftmax.log_softmax([1000.0, 1.0]))
    print("logsumexp([1000, 1000])      ->", nbsoftmax.logsumexp([1000.0, 1000.0]))
    rows = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    print("softmax(rows, axis=1)        ->\n", nbsoftmax.softmax(rows, axis=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
