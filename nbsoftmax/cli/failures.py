"""How every ``nbsoftmax`` command ends: one line per failure, never a traceback.

``run_command`` calls a command's function and turns what escapes it into an exit status:

- a closed stdout (``nbsoftmax demo | head -3``): quiet, status 141 (128 + SIGPIPE, what a
  shell reports for a tool killed by SIGPIPE);
- Ctrl-C: ``nbsoftmax CMD: interrupted``, status 130;
- any other exception (a bug, or a failure the command did not foresee): one line
  ``nbsoftmax CMD: error: <type>: <message>``, status 1. ``NBSOFTMAX_TRACEBACK=1`` in the
  environment shows the traceback instead, for a bug report.

Commands report the failures they foresee themselves, in their own words.
"""

import os
import sys

SIGPIPE_STATUS = 128 + 13


def _silence_stdout():
    """Point stdout at /dev/null: the interpreter's last flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a descriptor
        pass


def run_command(name, func, args):
    """func(args) -> its exit status, with the endings above.

    Examples
    --------
    >>> run_command("demo", lambda args: 0, None)
    0
    """
    try:
        status = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return SIGPIPE_STATUS
    except KeyboardInterrupt:
        print(f"nbsoftmax {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("NBSOFTMAX_TRACEBACK"):
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"nbsoftmax {name}: error: {type(exc).__name__}: {message} (set "
              "NBSOFTMAX_TRACEBACK=1 to see where)", file=sys.stderr)
        return 1
