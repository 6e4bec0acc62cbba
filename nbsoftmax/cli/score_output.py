"""``nbsoftmax score``: OUTPUT appears whole or not at all, and no temporary file outlives its run.

Everything is written to hidden temporary files beside OUTPUT, named after the process that
owns them::

    .OUTPUT.nbsoftmax.<host>.<pid>.<start>.<random>.part

(``host``: a hash of the host name, ``start``: the process's start time in clock ticks, so
that a recycled pid does not look alive). ``commit`` renames the finished file onto OUTPUT;
an error, Ctrl-C or SIGTERM removes the temporaries. A run killed outright (SIGKILL, power
loss) leaves them behind: the next run whose OUTPUT is in the same folder removes every such
file whose process, on this host, no longer exists.

The commit and the clean-up run with SIGINT and SIGTERM held back (acted on right after), so
that an interrupt lands either before OUTPUT is published (then nothing is left) or after
(then OUTPUT is complete and ``published`` says so): the final message can tell the truth.
"""

import contextlib
import hashlib
import os
import re
import secrets
import signal
import socket
import zipfile

from .score_job import ScoreError

_STAMP = re.compile(r"\.nbsoftmax\.([0-9a-f]{8})\.(\d+)\.(\d+)\.[0-9a-f]{8}\.part$")


def _host_tag():
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_start(pid):
    """Start time of process pid in clock ticks since boot (Linux), None if it does not
    exist, 0 where the system does not tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of proc(5), counted after "pid (comm)"
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _start_unknown(pid)
    except (OSError, IndexError, ValueError):
        return _start_unknown(pid)


def _start_unknown(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # exists, another user's
        pass
    return 0


def _is_stale(name, host):
    match = _STAMP.search(name)
    if match is None or match.group(1) != host:
        return False  # not ours, or a run on another host (a shared file system)
    pid, start = int(match.group(2)), int(match.group(3))
    now = process_start(pid)
    return now is None or (now != 0 and start != 0 and now != start)


def remove_stale_temporaries(directory):
    """Remove the temporaries of dead runs in directory; returns their names."""
    host = _host_tag()
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if name.startswith(".") and name.endswith(".part") and _is_stale(name, host):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed


@contextlib.contextmanager
def _interrupts_held():
    """SIGINT and SIGTERM wait until the block ends, then act as they would have.

    At the Python level (the handlers are swapped), not with pthread_sigmask: a signal sent
    to the process is delivered to any thread that does not block it (the kernels' worker
    threads), and Python then runs its handler in the main thread all the same."""
    caught = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, lambda number, frame: caught.append(number))
        except ValueError:  # not the main thread: nothing to hold
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            handler = previous.get(caught[0])
            if callable(handler):
                handler(caught[0], None)
            elif handler != signal.SIG_IGN:
                raise KeyboardInterrupt


def _create_exclusive(path):
    """Create path (mode 0600 for now, as mkstemp would); fails if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    os.close(os.open(path, flags, 0o600))


class PendingOutput:
    """Temporary files beside OUTPUT, renamed onto it by ``commit`` and removed otherwise.

    ``published`` is True once OUTPUT holds the complete result."""

    def __init__(self, final, overwrite):
        self.final = final
        self.overwrite = overwrite
        self.directory = os.path.dirname(os.path.abspath(final))
        self.temps = []
        self.published = False
        start = process_start(os.getpid()) or 0
        self._stamp = f"nbsoftmax.{_host_tag()}.{os.getpid()}.{start}"
        self.stale_removed = remove_stale_temporaries(self.directory)

    def __enter__(self):
        return self

    def new_temp(self):
        path = os.path.join(self.directory, f".{os.path.basename(self.final)}.{self._stamp}."
                                            f"{secrets.token_hex(4)}.part")
        try:
            _create_exclusive(path)
        except OSError as exc:
            raise ScoreError(f"OUTPUT {self.final} cannot be written in {self.directory}: "
                             f"{exc.strerror or exc}") from None
        self.temps.append(path)
        return path

    def commit(self, temp):
        """Publish temp as OUTPUT, then remove every other temporary."""
        with _interrupts_held():
            self._publish(temp)
            self.temps.remove(temp)
            self.published = True
            self._remove_temps()

    def _publish(self, temp):
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # created 0600; give it a new file's mode
        if self.overwrite:
            os.replace(temp, self.final)
            return
        try:  # atomic no-clobber: fails if OUTPUT appeared meanwhile
            os.link(temp, self.final)
        except FileExistsError:
            raise ScoreError(f"OUTPUT {self.final} appeared while scoring; it was left "
                             "as it is (pass --overwrite to replace it)") from None
        except OSError:  # file systems without hard links
            if os.path.lexists(self.final):
                raise ScoreError(f"OUTPUT {self.final} exists; pass --overwrite") from None
            os.replace(temp, self.final)
        else:
            os.unlink(temp)

    def _remove_temps(self):
        for path in self.temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.temps.clear()

    def __exit__(self, *exc):
        with _interrupts_held():
            self._remove_temps()


def write_topk_archive(pending, parts, names):
    """Zip the finished .npy parts (stored, so readers can map them) into one temp archive."""
    archive = pending.new_temp()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for part, name in zip(parts, names):
            zf.write(part, arcname=name + ".npy")
    return archive
