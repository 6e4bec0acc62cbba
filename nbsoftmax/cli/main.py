"""The ``nbsoftmax`` command (also ``python -m nbsoftmax``).

Each subcommand lives in its own module, imported only when it runs; with no subcommand
the help is printed.
"""

import argparse
import sys


def _demo(args):
    import numpy as np

    import nbsoftmax

    np.set_printoptions(precision=4, suppress=True)
    print("softmax([1, 2, 3])           ->", nbsoftmax.softmax([1.0, 2.0, 3.0]))
    print("log_softmax([1000, 1])       ->", nbsoftmax.log_softmax([1000.0, 1.0]))
    print("logsumexp([1000, 1000])      ->", nbsoftmax.logsumexp([1000.0, 1000.0]))
    rows = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    print("softmax(rows, axis=1)        ->\n", nbsoftmax.softmax(rows, axis=1))
    return 0


_DESCRIPTION = "Numerically stable softmax kernels (Numba): demo, benchmarks, warmup, scoring."
_EPILOG = "Run 'nbsoftmax COMMAND --help' for the options of a command."


def build_parser():
    from .. import __version__

    parser = argparse.ArgumentParser(prog="nbsoftmax", description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"nbsoftmax {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    demo = sub.add_parser("demo", help="print a short demonstration")
    demo.set_defaults(func=_demo)
    # Subcommands register here: each module has add_parser(sub) setting func=...
    from . import info as _info, warmup as _warmup

    _info.add_parser(sub)
    _warmup.add_parser(sub)
    from . import bench as _bench

    _bench.add_parser(sub)
    from . import score as _score

    _score.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:  # no command: say what there is
        parser.print_help()
        return 0
    from .failures import run_command

    return run_command(args.command, func, args)


if __name__ == "__main__":
    sys.exit(main())
