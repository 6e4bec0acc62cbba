"""Array files read and written in blocks, never whole: ``.npy`` files and ``.npz`` members.

An ``ArrayFile`` describes where an array's bytes are: the ``.npy`` header gives shape,
dtype and order, and the data is either a byte range of a file (``.npy``, or an ``.npz``
member stored uncompressed, as ``np.savez`` writes them) or, for a compressed member
(``np.savez_compressed``), a stream that can only be read front to back.

Everything here works in *memory order*: a Fortran-ordered array of shape ``S`` is the
C-ordered array of shape ``reversed(S)``, so callers see one C-ordered ``memory_shape`` and
write their results back in the same order (a Fortran input gives a Fortran output).

Blocks are contiguous byte ranges, read with ``pread`` into a caller's reusable buffer and
written with ``pwrite``: sequential, so the kernel's read-ahead applies, and nothing of the
files is mapped into the process, whose resident memory stays the buffers (a mapping would
count every page it touched until unmapped).
"""

import errno
import os
import stat
import struct
import zipfile
import zlib

import numpy as np

_ZIP_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # the fixed 30 bytes of a zip local header
_MAX_HEADER_SIZE = 1 << 20  # np.load's limit is 10,000; large shapes of many dims still fit
MAX_DIMS = 64  # NumPy 2's NPY_MAXDIMS
_MAX_BYTES = np.iinfo(np.intp).max
# What a damaged deflate stream or archive raises while it is read.
_STREAM_ERRORS = (zlib.error, zipfile.BadZipFile, EOFError, NotImplementedError)
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


class ArrayFileError(ValueError):
    """An input or output file that cannot be used, with a message naming it and why."""


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def open_regular(path, what):
    """A read-only descriptor of the regular file ``path``, or ArrayFileError.

    Checked before anything is read, and opened with O_NONBLOCK so that a FIFO swapped in
    meanwhile cannot block the open (``fstat`` then refuses it): a FIFO, ``/dev/zero`` or
    ``/dev/urandom`` would otherwise block forever or be read without bound."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ArrayFileError(f"{what} does not exist") from None
    except OSError as exc:
        raise ArrayFileError(f"{what} cannot be read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise ArrayFileError(f"{what} is {kind}; expected a .npy or .npz file")
    return fd


def _read_npy_header(fp, what):
    """(shape, fortran_order, dtype, header length) of the .npy stream fp (at its start)."""
    start = fp.tell()
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                fp, max_header_size=_MAX_HEADER_SIZE)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                fp, max_header_size=_MAX_HEADER_SIZE)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except _STREAM_ERRORS as exc:
        raise ArrayFileError(f"{what} is damaged ({type(exc).__name__}: {exc})") from None
    except OSError:
        raise
    except Exception as exc:  # the header is untrusted text: any parse failure is "not .npy"
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ArrayFileError(f"{what} is not a .npy array ({detail})") from None
    _check_shape(shape, dtype, what)
    return tuple(int(s) for s in shape), bool(fortran), dtype, fp.tell() - start


def _check_shape(shape, dtype, what):
    """Refuse at once what NumPy could not hold: negative or non-integer sizes, more than
    MAX_DIMS dimensions, more bytes than an index can address (as NumPy counts them: the
    product of the non-zero sizes, so (2**62, 0) float32 is too big)."""
    if not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape):
        raise ArrayFileError(f"{what} has shape {shape!r}; expected a tuple of integers")
    if any(s < 0 for s in shape):
        raise ArrayFileError(f"{what} has a negative size in its shape {shape}")
    if len(shape) > MAX_DIMS:
        raise ArrayFileError(f"{what} has {len(shape)} dimensions; NumPy allows at most "
                             f"{MAX_DIMS}")
    nbytes = dtype.itemsize
    for s in shape:
        nbytes *= s or 1
        if nbytes > _MAX_BYTES:
            raise ArrayFileError(f"{what} has shape {shape} of {dtype}: more than the "
                                 f"{_MAX_BYTES:,} bytes an array can address")


class ArrayFile:
    """Where one array lives on disk. Build it with ``ArrayFile.open(path, key)``.

    Attributes: ``path``, ``key`` (the .npz member, or None), ``shape`` and ``dtype`` as
    stored (the dtype may be byte-swapped), ``fortran_order``, ``memory_shape``,
    ``data_offset`` (None for a compressed member, readable only as a stream) and ``what``
    (a name for messages).
    """

    def __init__(self, path, key, shape, fortran_order, dtype, data_offset, what):
        self.path = os.fspath(path)
        self.key = key
        self.shape = shape
        self.fortran_order = fortran_order and len(shape) > 1
        self.dtype = dtype
        self.data_offset = data_offset
        self.what = what
        self.memory_shape = tuple(reversed(shape)) if self.fortran_order else shape
        self.size = _prod(shape)
        self.nbytes = self.size * dtype.itemsize

    @property
    def seekable(self):
        return self.data_offset is not None

    def memory_axis(self, axis):
        """A logical (non-negative) axis -> its axis in memory_shape."""
        return len(self.shape) - 1 - axis if self.fortran_order else axis

    @classmethod
    def open(cls, path, key=None):
        path = os.fspath(path)
        with os.fdopen(open_regular(path, f"INPUT {path}"), "rb") as fp:
            try:
                is_zip = zipfile.is_zipfile(fp)
                fp.seek(0)
                if is_zip:
                    return cls._open_member(path, key, fp)
                if key is not None:
                    raise ArrayFileError(f"--key {key!r} applies to .npz input, but INPUT "
                                         f"{path} is not an .npz archive")
                shape, fortran, dtype, header = _read_npy_header(fp, f"INPUT {path}")
                size = os.fstat(fp.fileno()).st_size
            except OSError as exc:
                raise ArrayFileError(f"INPUT {path} cannot be read: {exc.strerror or exc}"
                                     ) from None
        array = cls(path, None, shape, fortran, dtype, header, f"INPUT {path}")
        array._check_length(size - header)
        return array

    @classmethod
    def _open_member(cls, path, key, fp):
        try:
            with zipfile.ZipFile(fp) as zf:
                names = [n for n in zf.namelist() if n.endswith(".npy")]
                keys = [n[:-4] for n in names]
                if key is None:
                    if len(keys) != 1:
                        held = ", ".join(keys) if keys else "no arrays"
                        raise ArrayFileError(f"INPUT {path} holds {held}; choose one with --key")
                    key = keys[0]
                member = key if key.endswith(".npy") else key + ".npy"
                if member not in names:
                    held = ", ".join(keys) if keys else "no arrays"
                    raise ArrayFileError(f"INPUT {path} has no array {key!r} (--key); it holds "
                                         f"{held}")
                info = zf.getinfo(member)
                if info.flag_bits & 0x1:
                    raise ArrayFileError(f"INPUT {path}: member {member} is encrypted")
                what = f"INPUT {path} [{key}]"
                with zf.open(info) as stream:
                    shape, fortran, dtype, header = _read_npy_header(stream, what)
                offset = None
                if info.compress_type == zipfile.ZIP_STORED:
                    offset = _member_data_offset(fp, info) + header
                array = cls(path, key, shape, fortran, dtype, offset, what)
                array._check_length(info.file_size - header)
                array._member_header = header
                return array
        except ArrayFileError:
            raise
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # a seek before the start: a damaged directory
                raise ArrayFileError(f"INPUT {path} is not a readable .npz archive (an offset "
                                     "in its directory points outside the file)") from None
            raise ArrayFileError(f"INPUT {path} cannot be read: {exc.strerror or exc}") from None
        except Exception as exc:  # zipfile on a damaged archive: BadZipFile, zlib, struct...
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ArrayFileError(f"INPUT {path} is not a readable .npz archive ({detail})"
                                 ) from None

    def _check_length(self, available):
        if self.dtype.hasobject:
            raise ArrayFileError(f"{self.what} holds Python objects (dtype {self.dtype}); "
                                 "expected a numeric array")
        if available < self.nbytes:
            raise ArrayFileError(f"{self.what} is truncated: its header announces {self.nbytes} "
                                 f"bytes of data but only {available} are there")

    def reader(self):
        """A ``BlockReader`` over this array's data (close it, or use it as a context manager)."""
        return BlockReader(self)


def _member_data_offset(fp, info):
    """Offset in the archive fp of a stored member's first byte (after its local header)."""
    fp.seek(info.header_offset)
    fixed = fp.read(_ZIP_LOCAL_HEADER.size)
    fields = _ZIP_LOCAL_HEADER.unpack(fixed)
    if fields[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    name_length, extra_length = fields[-2], fields[-1]
    return info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length


class BlockReader:
    """Reads blocks of an ``ArrayFile`` (in memory order) into caller-supplied arrays."""

    def __init__(self, array):
        self.array = array
        self._fd = None
        self._zip = None
        self._zip_file = None
        self._stream = None
        self._position = 0  # elements consumed from a stream
        self._fd = open_regular(array.path, array.what)  # checked again: it may have changed
        if array.seekable:
            _advise(self._fd, 0, 0, "POSIX_FADV_SEQUENTIAL")  # a larger read-ahead window
        else:
            try:
                self._zip_file = os.fdopen(os.dup(self._fd), "rb")
                self._zip = zipfile.ZipFile(self._zip_file)
                member = array.key if array.key.endswith(".npy") else array.key + ".npy"
                self._stream = self._zip.open(member)
                _read_stream(self._stream, memoryview(bytearray(array._member_header)),
                             array.what)
            except ArrayFileError:
                self.close()
                raise
            except Exception as exc:
                self.close()
                raise ArrayFileError(f"{array.what} cannot be read ({exc})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._zip is not None:
            self._zip.close()  # (a ZipFile does not close the file it was given)
            self._zip = None
        if self._zip_file is not None:
            self._zip_file.close()
            self._zip_file = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, start, out):
        """Fill the C-contiguous array ``out`` (the stored dtype) from element ``start`` on."""
        view = memoryview(out.reshape(-1).view(np.uint8))
        if self._stream is not None:
            if start != self._position:
                raise RuntimeError("a compressed .npz member is read front to back only")
            _read_stream(self._stream, view, self.array.what)
            self._position += out.size
            return out
        offset = self.array.data_offset + start * self.array.dtype.itemsize
        # Ask for the next block now: the disk reads it while this one is computed.
        _advise(self._fd, offset + len(view), len(view), "POSIX_FADV_WILLNEED")
        done = 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done)
            if got == 0:
                raise ArrayFileError(f"{self.array.what} ended early (was it truncated "
                                     "while being read?)")
            done += got
        return out


def _advise(fd, offset, length, advice):
    """posix_fadvise where the platform has it; advice only, so failures are ignored."""
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, getattr(os, advice))
        except OSError:  # pragma: no cover - e.g. a file system without it
            pass


def _read_stream(stream, view, what):
    done = 0
    while done < len(view):
        try:
            got = stream.readinto(view[done:])
        except _STREAM_ERRORS as exc:  # a damaged deflate stream, a bad CRC at the end
            raise ArrayFileError(f"{what} is damaged ({type(exc).__name__}: {exc})") from None
        if not got:
            raise ArrayFileError(f"{what} ended early")
        done += got


class NpyWriter:
    """A ``.npy`` file written block by block at any offsets (``pwrite``), C or Fortran order.

    The file is created at its full size with a valid header by ``np.lib.format.open_memmap``
    (sparse until written), then filled. Blocks are in memory order, as for ``BlockReader``.
    """

    def __init__(self, path, shape, dtype, fortran_order=False):
        self.path = path
        self.dtype = np.dtype(dtype)
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=tuple(shape),
                                       fortran_order=fortran_order)
        self.data_offset = mm.offset
        del mm
        self._fd = os.open(path, os.O_RDWR)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def write(self, start, block):
        """Write the C-contiguous ``block`` at element ``start`` (memory order)."""
        view = memoryview(np.ascontiguousarray(block).reshape(-1).view(np.uint8))
        offset = self.data_offset + start * self.dtype.itemsize
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
