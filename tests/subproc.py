"""Running Python in a fresh interpreter, for what only a new process shows.

Numba picks its threading layer once per process, ``fork`` and the on-disk cache involve
several processes, and a crash or a hang must fail a test, not end the run. ``run_python``
starts the code in its own session and kills the whole process group (pool workers
included) when it overruns, so a hang becomes a failure with the output so far.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "nbsoftmax"

# Numba settings a test may set; anything else in the environment is passed through.
_NUMBA_VARS = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "NUMBA_NUM_THREADS",
               "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")


def run_python(code, env=None, timeout=240, path_first=None, args=()):
    """Run code (a string) as a script file in a new interpreter; return its stdout.

    env: variables to set (None values unset them) over a copy of os.environ without any
    of the Numba settings above. path_first: a directory put before the repository on
    PYTHONPATH (to import a copy of the package). Fails the test on a non-zero exit, a
    signal or a timeout, showing stdout and stderr.
    """
    full_env = {k: v for k, v in os.environ.items() if k not in _NUMBA_VARS}
    paths = ([str(path_first)] if path_first else []) + [str(REPO)]
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = str(value)
    script = Path(_scratch_dir()) / f"script_{os.getpid()}_{_counter()}.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], env=full_env, cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s (a hang)\n--- stdout\n{out}\n"
                             f"--- stderr\n{err}") from None
    finally:
        script.unlink(missing_ok=True)
    if proc.returncode != 0:
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        raise AssertionError(f"subprocess failed: {how}\n--- stdout\n{out}\n--- stderr\n{err}")
    return out


_count = [0]


def _counter():
    _count[0] += 1
    return _count[0]


def _scratch_dir():
    import tempfile

    path = Path(tempfile.gettempdir()) / "nbsoftmax-tests"
    path.mkdir(exist_ok=True)
    return path


def copy_package(dest):
    """Copy the nbsoftmax sources (no caches) to dest/nbsoftmax; return dest for path_first."""
    dest = Path(dest)
    shutil.copytree(PACKAGE, dest / "nbsoftmax",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
    return dest


def block_directory(path):
    """Make path unusable as a directory for anyone, root included: a regular file stands there."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a directory\n")


# Code run first in a subprocess to make everything under READ_ONLY_DIRS read-only as the
# process sees it. chmod does not stop root (as CI runs), so writes are refused at the
# Python level, where Numba's cache performs them: open() for writing, os.open with write
# flags, replace/rename/unlink/mkdir. Reads are untouched.
READ_ONLY_PRELUDE = r'''
import builtins, errno, io, os
_RO = [os.path.realpath(p) for p in os.environ["READ_ONLY_DIRS"].split(os.pathsep)]
def _inside(path):
    try:
        path = os.path.realpath(os.fspath(path))
    except TypeError:
        return False
    return any(path == d or path.startswith(d + os.sep) for d in _RO)
def _refuse(path):
    raise PermissionError(errno.EROFS, "Read-only file system (test)", os.fspath(path))
_open = builtins.open
def _ro_open(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and _inside(file):
        _refuse(file)
    return _open(file, mode, *args, **kwargs)
builtins.open = io.open = _ro_open
_os_open = os.open
def _ro_os_open(path, flags, *args, **kwargs):
    dir_fd = kwargs.get("dir_fd")
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _inside(path):
        _refuse(path)
    return _os_open(path, flags, *args, **kwargs)
os.open = _ro_os_open
def _guard(name, nargs):
    original = getattr(os, name)
    def guarded(*args, **kwargs):
        for p in args[:nargs]:
            if _inside(p):
                _refuse(p)
        return original(*args, **kwargs)
    setattr(os, name, guarded)
for _name, _n in (("replace", 2), ("rename", 2), ("unlink", 1), ("remove", 1), ("mkdir", 1),
                  ("rmdir", 1)):
    _guard(_name, _n)
'''
