"""Every failure of ``nbsoftmax score`` (and of any command) is one ``nbsoftmax CMD: error:``
line and a non-zero exit, never a traceback, and bad input is refused before anything is
read without bound, blocks, loads a kernel or writes a file.

The inputs are crafted byte by byte: headers with unbalanced braces, negative or huge
shapes, too many dimensions; damaged deflate streams; a FIFO and devices instead of files.
"""

import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

from nbsoftmax.cli import failures, main, score_local
from tests.subproc import REPO


def npy_with_header(path, header, data=b""):
    """A version 1.0 .npy file whose header dict is the text `header`, as given."""
    text = header.ljust(((len(header) + 11) // 64 + 1) * 64 - 11) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
                     + data)
    return path


def _header(shape, dtype="<f4"):
    return f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}"


@pytest.fixture
def no_kernels(monkeypatch):
    """Fails the test if a run gets as far as loading kernels: bad input is refused first."""
    def refuse(job):
        raise AssertionError("kernels were loaded before the input was refused")

    monkeypatch.setattr(score_local, "warm_up", refuse)


def one_error_line(capsys, *args):
    rc = main(["score", *map(str, args)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.count("\n") == 1 and err.startswith("nbsoftmax score: error: "), err
    return err


def _good(tmp_path):
    np.save(tmp_path / "good.npy", np.ones((4, 5), np.float32))
    return tmp_path / "good.npy"


CRAFTED = {
    "unbalanced braces": ("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), ",
                          "is not a .npy array"),
    "negative shape": (_header("(-3, 10)"), "has a negative size in its shape (-3, 10)"),
    "(2**62, 0)": (_header(f"({2**62}, 0)"), "more than the 9,223,372,036,854,775,807 bytes"),
    "65 dimensions": (_header("(" + "1, " * 65 + ")"), "has 65 dimensions; NumPy allows at "
                                                       "most 64"),
    "shape not a tuple": (_header("'many'"), "is not a .npy array (shape is not valid"),
    "float shape": (_header("(2.5, 3)"), "is not a .npy array (shape is not valid"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_headers(tmp_path, capsys, no_kernels, case):
    header, message = CRAFTED[case]
    path = npy_with_header(tmp_path / "x.npy", header, b"\0" * 80)
    err = one_error_line(capsys, path, "-o", tmp_path / "y.npy")
    assert message in err and f"INPUT {path}" in err, err
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]


def test_damaged_deflate_stream(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(score_local, "warm_up", lambda job: None)  # found while reading
    x = np.random.default_rng(0).standard_normal((300, 50)).astype(np.float32)
    np.savez_compressed(tmp_path / "x.npz", logits=x)
    blob = bytearray((tmp_path / "x.npz").read_bytes())
    for at in range(400, 460):  # inside the deflate data, past the .npy header
        blob[at] ^= 0x5A
    (tmp_path / "bad.npz").write_bytes(bytes(blob))
    # an explicit limit: the test process (an xdist worker) may already hold more than the
    # default 1 GB, which would be refused before the archive is read
    err = one_error_line(capsys, tmp_path / "bad.npz", "-o", tmp_path / "y.npy",
                         "--memory-limit", "16GB")
    assert f"INPUT {tmp_path / 'bad.npz'} [logits] is damaged" in err, err
    assert sorted(os.listdir(tmp_path)) == ["bad.npz", "x.npz"]  # no temporary left


def test_archive_with_a_damaged_directory(tmp_path, capsys, no_kernels):
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    blob = (tmp_path / "x.npz").read_bytes()
    end = blob.rindex(b"PK\x05\x06")  # end of central directory: point it past the file
    (tmp_path / "bad.npz").write_bytes(blob[:end + 16] + b"\xff\xff\xff\x7f" + blob[end + 20:])
    err = one_error_line(capsys, tmp_path / "bad.npz", "-o", tmp_path / "y.npy")
    assert f"INPUT {tmp_path / 'bad.npz'} is not a readable .npz archive" in err, err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_before_reading(tmp_path, capsys, no_kernels, device):
    """/dev/zero was read without bound (24 GB) by zipfile.is_zipfile."""
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist on this system")
    err = one_error_line(capsys, device, "-o", tmp_path / "y.npy")
    assert f"INPUT {device} is a character device; expected a .npy or .npz file" in err


def test_fifo_input_is_refused_without_blocking(tmp_path, capsys, no_kernels):
    """open() of a FIFO blocks until a writer comes; the check must not open it that way."""
    os.mkfifo(tmp_path / "pipe.npy")
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        rc=main(["score", str(tmp_path / "pipe.npy"), "-o", str(tmp_path / "y.npy")])),
        daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # unblock it, then fail
        with open(tmp_path / "pipe.npy", "wb"):
            pass
        pytest.fail("score blocked on a FIFO INPUT")
    err = capsys.readouterr().err
    assert result["rc"] == 1 and "is a FIFO; expected a .npy or .npz file" in err, err


@pytest.mark.parametrize("limit", ["nan", "inf", "-inf", "1e400", "0", "-5MB", "0.5"])
def test_memory_limit_must_be_a_finite_size(tmp_path, capsys, no_kernels, limit):
    err = one_error_line(capsys, _good(tmp_path), "-o", tmp_path / "y.npy",
                         f"--memory-limit={limit}")
    assert f"--memory-limit {limit!r} is not a size" in err


@pytest.mark.parametrize("axis", [2, -3, 2**70, -(2**70)])
def test_axis_out_of_range_however_large(tmp_path, capsys, no_kernels, axis):
    err = one_error_line(capsys, _good(tmp_path), "-o", tmp_path / "y.npy", f"--axis={axis}")
    assert f"--axis {axis} is out of range for INPUT" in err and "expected -2 to 1" in err


def test_top_k_out_of_range_however_large(tmp_path, capsys, no_kernels):
    err = one_error_line(capsys, _good(tmp_path), "-o", tmp_path / "y.npz",
                         f"--top-k={2**70}")
    assert "must be between 1 and the length 5" in err


def test_device_cuda_without_a_gpu(tmp_path, capsys, no_kernels, monkeypatch):
    from nbsoftmax.cuda import _runtime

    if _runtime.cuda is not None and _runtime.cuda.is_available():
        # (with a GPU, or the simulator on in this process) make it look absent
        monkeypatch.setattr(_runtime, "_checked", False)
        monkeypatch.setattr(_runtime.cuda, "is_available", lambda: False)
    err = one_error_line(capsys, _good(tmp_path), "-o", tmp_path / "y.npy", "--device", "cuda")
    assert "--device cuda: a CUDA device was requested but" in err
    assert sorted(os.listdir(tmp_path)) == ["good.npy"]


def test_unforeseen_failures_are_one_line(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.delenv("NBSOFTMAX_TRACEBACK", raising=False)
    assert failures.run_command("demo", broken, None) == 1
    err = capsys.readouterr().err
    assert err == ("nbsoftmax demo: error: RuntimeError: something unforeseen (set "
                   "NBSOFTMAX_TRACEBACK=1 to see where)\n")
    monkeypatch.setenv("NBSOFTMAX_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="unforeseen"):
        failures.run_command("demo", broken, None)


def test_demo_into_a_closed_pipe_ends_quietly():
    """`nbsoftmax demo | head -3`: the reader goes away; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "nbsoftmax", "demo"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    proc.stdout.close()  # before the first write: every write fails with EPIPE
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=240) == failures.SIGPIPE_STATUS
    assert err == ""


def test_score_interrupted_before_any_output(tmp_path, capsys, monkeypatch):
    def interrupt(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(score_local, "warm_up", interrupt)
    assert main(["score", str(_good(tmp_path)), "-o", str(tmp_path / "y.npy")]) == 130
    assert capsys.readouterr().err == (f"nbsoftmax score: interrupted; OUTPUT "
                                       f"{tmp_path / 'y.npy'} was not written\n")
    assert sorted(os.listdir(tmp_path)) == ["good.npy"]


def test_npz_member_that_is_not_an_array(tmp_path, capsys, no_kernels):
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as zf:
        zf.writestr("a.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'   \n")
    err = one_error_line(capsys, tmp_path / "x.npz", "-o", tmp_path / "y.npy")
    assert f"INPUT {tmp_path / 'x.npz'} [a] is not a .npy array" in err, err




def test_interrupt_swallowed_during_the_warm_up_still_stops(tmp_path, capsys, monkeypatch):
    """A signal landing in a ctypes callback (Numba's object cache, while kernels load) has
    its KeyboardInterrupt ignored; the handler's flag stops the run after the warm-up."""
    from nbsoftmax.cli import score_job

    def swallowed(job):
        score_job.interrupt_seen[0] = True  # what the handler did before its raise was lost

    monkeypatch.setattr(score_local, "warm_up", swallowed)
    assert main(["score", str(_good(tmp_path)), "-o", str(tmp_path / "y.npy")]) == 130
    assert "interrupted; OUTPUT" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["good.npy"]
