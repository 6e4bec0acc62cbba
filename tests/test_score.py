"""``nbsoftmax score``: values against the references for every input kind and path, top-k,
safe output (temporary file, rename, --overwrite, errors and interrupts), progress, and peak
memory of a real process against --memory-limit on an input larger than the limit.

Most tests call the command in-process (``main([...])``); the memory test runs it in a
subprocess, the only way to see a process's peak RSS.
"""

import errno
import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from nbsoftmax.cli import arrayfile as _arrayfile, progress as _progress
from nbsoftmax.cli import score_local, score_output as _output, score_plan as _plan
from nbsoftmax.cli import main
from tests import checks
from tests.subproc import REPO


def score(*args):
    return main(["score", *map(str, args)])


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(autouse=True)
def fresh_process_memory(monkeypatch):
    """In-process calls see the memory of a freshly started `nbsoftmax score` (~200 MB), not
    that of a pytest process that has run the rest of the suite (over 1 GB by then, which made
    every default --memory-limit too small). The subprocess test measures the real thing.

    With the memory faked, the warm-up (which loads every kernel variant of the op before the
    blocks are sized, so that their memory counts) has no purpose here: kernels load at their
    first use instead, which keeps these tests to the kernels they run."""
    monkeypatch.setattr(_plan, "_peak_rss", lambda: 200 * 2**20)
    monkeypatch.setattr(score_local, "warm_up", lambda job: None)


@pytest.fixture
def logits(rng):
    return (rng.standard_normal((37, 23)) * 5).astype(np.float32)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few hundred bytes: every path cuts the input into many blocks, and slabs
    never fit, so the two-pass path runs. (The process's own memory is left out.)"""
    monkeypatch.setattr(_plan, "_peak_rss", lambda: 0)
    monkeypatch.setattr(_plan, "MARGIN_BYTES", 0)
    monkeypatch.setattr(_plan, "TARGET_BLOCK_BYTES", 256)
    return "--memory-limit=2kB"


# ------------------------------------------------------------------ values


def _inputs(rng):
    x = (rng.standard_normal((9, 6, 7)) * 4).astype(np.float32)
    special = x.copy()
    special[0, :, 0] = -np.inf  # a slice of -inf along axis 1
    special[1, 2, :] = np.nan
    special[2, :, 3] = np.inf
    special[3, 0, 1] = -np.inf
    return {
        "float32": x,
        "special": special,
        "fortran": np.asfortranarray(x),
        "float16": x.astype(np.float16),
        "float64": x.astype(np.float64),
        "int16": rng.integers(-5, 5, (9, 6, 7)).astype(np.int16),
        "bool": rng.random((9, 6, 7)) < 0.5,
        "big_endian": x.astype(">f4"),
    }


@pytest.mark.parametrize("kind", ["float32", "special", "fortran", "float16", "float64", "int16",
                                  "bool", "big_endian"])
@pytest.mark.parametrize("axis", [-1, 1, 0])
@pytest.mark.parametrize("log", [False, True])
def test_values_match_the_reference(tmp_path, rng, kind, axis, log):
    x = _inputs(rng)[kind]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    assert score(tmp_path / "x.npy", "-o", out, "--axis", axis, *(["--log"] if log else [])) == 0
    got = np.load(out)
    assert got.flags.f_contiguous == (kind == "fortran")
    (checks.assert_log_softmax if log else checks.assert_softmax)(got, x, axis)


@pytest.mark.parametrize("axis", [-1, 1, 0])
@pytest.mark.parametrize("kind", ["float32", "special", "fortran", "int16"])
@pytest.mark.parametrize("log", [False, True])
def test_two_passes_when_slabs_do_not_fit(tmp_path, rng, tiny_blocks, kind, axis, log):
    x = _inputs(rng)[kind]
    np.save(tmp_path / "x.npy", x)
    plan = _plan.BlockPlan(x.shape, axis % 3, 16, 0)
    assert not plan.whole
    out = tmp_path / "y.npy"
    args = ["--axis", axis, tiny_blocks] + (["--log"] if log else [])
    assert score(tmp_path / "x.npy", "-o", out, *args) == 0
    (checks.assert_log_softmax if log else checks.assert_softmax)(np.load(out), x, axis)


def test_dtype_option_casts_first(tmp_path, logits):
    np.save(tmp_path / "x.npy", logits)
    for dtype in ("float16", "float64"):
        out = tmp_path / f"{dtype}.npy"
        assert score(tmp_path / "x.npy", "-o", out, "--dtype", dtype) == 0
        checks.assert_softmax(np.load(out), logits, dtype=dtype)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_members_stored_and_compressed(tmp_path, logits, save, tiny_blocks):
    save(tmp_path / "x.npz", logits=logits, other=logits[:2])
    for extra in ([], [tiny_blocks]):
        out = tmp_path / "y.npy"
        assert score(tmp_path / "x.npz", "--key", "logits", "-o", out, "--overwrite", *extra) == 0
        checks.assert_softmax(np.load(out), logits)


def test_compressed_member_is_streamed_not_loaded(tmp_path, logits, monkeypatch):
    """A deflated member is decompressed front to back through one block-sized buffer."""
    np.savez_compressed(tmp_path / "x.npz", logits)
    source = _arrayfile.ArrayFile.open(tmp_path / "x.npz")
    assert not source.seekable and source.key == "arr_0"
    reads = []
    original = _arrayfile.BlockReader.read

    def counted(self, start, out):
        reads.append(out.size)
        return original(self, start, out)

    monkeypatch.setattr(_arrayfile.BlockReader, "read", counted)
    monkeypatch.setattr(_plan, "TARGET_BLOCK_BYTES", 23 * 4 * 5)
    assert score(tmp_path / "x.npz", "-o", tmp_path / "y.npy") == 0
    assert max(reads) == 23 * 5 and sum(reads) == logits.size
    checks.assert_softmax(np.load(tmp_path / "y.npy"), logits)


def test_zero_d_and_empty_inputs(tmp_path):
    cases = {"scalar": np.float32(3.0), "no_rows": np.zeros((0, 5), np.float32),
             "empty_slices": np.zeros((4, 0), np.float64)}
    for name, x in cases.items():
        np.save(tmp_path / f"{name}.npy", x)
        out = tmp_path / f"{name}_out.npy"
        assert score(tmp_path / f"{name}.npy", "-o", out) == 0
        checks.assert_softmax(np.load(out), x, None if x.ndim == 0 else -1)


# ------------------------------------------------------------------ top-k


def _top_k_reference(x, k, axis):
    """Indices of the k largest logits along axis, ties to the lower index (a stable sort);
    slices whose softmax is NaN (a NaN or +inf, or only -inf) give 0..k-1."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    bad = np.isnan(x).any(-1) | np.isposinf(x).any(-1) | np.isneginf(x).all(-1)
    order[bad] = np.arange(k)
    return np.moveaxis(order, -1, axis)


def _two_pass_blocks(monkeypatch, limit="8kB"):
    monkeypatch.setattr(_plan, "_peak_rss", lambda: 0)
    monkeypatch.setattr(_plan, "MARGIN_BYTES", 0)
    monkeypatch.setattr(_plan, "TARGET_BLOCK_BYTES", 256)
    return ["--memory-limit", limit]


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("two_passes", [False, True])
def test_top_k_sorted_with_ties_to_the_lower_index(tmp_path, rng, axis, two_passes, monkeypatch):
    x = rng.integers(0, 4, (40, 30)).astype(np.float32)  # many ties
    x[3, 7] = np.nan
    x[5] = -np.inf
    x[:, 4] = -np.inf
    x[8, 2] = np.inf
    np.save(tmp_path / "x.npy", x)
    extra = _two_pass_blocks(monkeypatch) if two_passes else []
    import nbsoftmax

    for log in (False, True):
        out = tmp_path / f"top{log}.npz"
        args = ["--top-k", 5, "--axis", axis] + (["--log"] if log else []) + extra
        assert score(tmp_path / "x.npy", "-o", out, *args) == 0
        p = (nbsoftmax.log_softmax if log else nbsoftmax.softmax)(x, axis)
        want_i = _top_k_reference(x, 5, axis)
        with np.load(out) as z:
            name = "log_probabilities" if log else "probabilities"
            assert sorted(z.files) == sorted(["indices", name])
            assert z["indices"].dtype == np.int64
            np.testing.assert_array_equal(z["indices"], want_i)
            np.testing.assert_allclose(z[name], np.take_along_axis(p, want_i, axis),
                                       rtol=4e-6, atol=2e-6)
            if not log:  # as the library's own top-k
                np.testing.assert_array_equal(z["indices"],
                                              nbsoftmax.softmax_topk(x, 5, axis)[1])


@pytest.mark.parametrize("two_passes", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_top_k_ranks_by_the_logits_not_the_rounded_probabilities(tmp_path, rng, monkeypatch,
                                                                 two_passes, dtype):
    """Issue 10 item 6: [[0, 250, 100, 90]], k=3 gave [1, 0, 2] (probabilities 0 tie)."""
    x = (rng.standard_normal((200, 40)) * 60).astype(dtype)
    x[0, :4] = [0, 250, 100, 90]
    x[0, 4:] = -1000
    np.save(tmp_path / "x.npy", x)
    extra = _two_pass_blocks(monkeypatch, "40kB") if two_passes else []
    assert score(tmp_path / "x.npy", "-o", tmp_path / "t.npz", "--top-k", 3, *extra) == 0
    with np.load(tmp_path / "t.npz") as z:
        assert z["indices"][0].tolist() == [1, 2, 3]
        np.testing.assert_array_equal(z["indices"], _top_k_reference(x, 3, -1))
        assert z["probabilities"].dtype == np.dtype(dtype)


def test_top_k_whole_axis_and_errors(tmp_path, logits, capsys):
    np.save(tmp_path / "x.npy", logits)
    assert score(tmp_path / "x.npy", "-o", tmp_path / "all.npz", "--top-k", 23) == 0
    with np.load(tmp_path / "all.npz") as z:
        assert z["indices"].shape == logits.shape
        np.testing.assert_array_equal(np.sort(z["indices"], axis=1),
                                      np.broadcast_to(np.arange(23), logits.shape))
    for k in (0, 24):
        assert score(tmp_path / "x.npy", "-o", tmp_path / "bad.npz", "--top-k", k) == 1
    assert score(tmp_path / "x.npy", "-o", tmp_path / "bad.npy", "--top-k", 3) == 1
    err = capsys.readouterr().err
    assert "--top-k 0 must be between 1 and the length 23" in err
    assert "should end in .npz" in err
    assert not (tmp_path / "bad.npz").exists() and not (tmp_path / "bad.npy").exists()


# ------------------------------------------------------------------ bad input, safe output


def _bad_inputs(tmp_path, logits):
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "complex.npy", logits.astype(np.complex64))
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object))
    np.save(tmp_path / "good.npy", logits)
    with open(tmp_path / "good.npy", "rb") as f:
        (tmp_path / "truncated.npy").write_bytes(f.read()[:500])
    np.savez(tmp_path / "two.npz", a=logits, b=logits)
    return [
        ("text.npy", [], "is not a .npy"),
        ("complex.npy", [], "has dtype complex64; expected bool, integer, float16, float32"),
        ("objects.npy", [], "holds Python objects"),
        ("truncated.npy", [], "is truncated"),
        ("missing.npy", [], "does not exist"),
        ("good.npy", ["--axis", "2"], "--axis 2 is out of range for INPUT"),
        ("good.npy", ["--key", "a"], "--key 'a' applies to .npz input"),
        ("two.npz", [], "holds a, b; choose one with --key"),
        ("two.npz", ["--key", "c"], "has no array 'c' (--key); it holds a, b"),
        ("good.npy", ["--memory-limit", "10MB"], "--memory-limit 10 MB is too small"),
        ("good.npy", ["--memory-limit", "lots"], "is not a size"),
    ]


def test_bad_input_one_line_nonzero_nothing_written(tmp_path, logits, capsys):
    for name, extra, message in _bad_inputs(tmp_path, logits):
        before = files_in(tmp_path)
        assert score(tmp_path / name, "-o", tmp_path / "out.npy", *extra) == 1, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("nbsoftmax score: error: "), err
        assert message in err, (name, err)
        assert files_in(tmp_path) == before


def test_unwritable_output(tmp_path, logits, capsys):
    np.save(tmp_path / "x.npy", logits)
    assert score(tmp_path / "x.npy", "-o", tmp_path / "nowhere" / "y.npy") == 1
    assert "does not exist" in capsys.readouterr().err
    assert score(tmp_path / "x.npy", "-o", tmp_path) == 1  # a directory


def test_unwritable_directory(tmp_path, logits, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", logits)

    def refuse(*args, **kwargs):  # what a read-only directory does (root would not see it)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_output, "_create_exclusive", refuse)
    assert score(tmp_path / "x.npy", "-o", tmp_path / "y.npy") == 1
    err = capsys.readouterr().err
    assert f"OUTPUT {tmp_path / 'y.npy'} cannot be written in {tmp_path}: Permission denied" in err
    assert files_in(tmp_path) == ["x.npy"]


def test_existing_output_needs_overwrite(tmp_path, logits, capsys):
    np.save(tmp_path / "x.npy", logits)
    out = tmp_path / "y.npy"
    out.write_bytes(b"precious")
    assert score(tmp_path / "x.npy", "-o", out) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert score(tmp_path / "x.npy", "-o", out, "--overwrite") == 0
    checks.assert_softmax(np.load(out), logits)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    # In place: INPUT replaced by its probabilities only once they are complete.
    assert score(tmp_path / "x.npy", "-o", tmp_path / "x.npy", "--overwrite") == 0
    checks.assert_softmax(np.load(tmp_path / "x.npy"), logits)
    assert files_in(tmp_path) == ["x.npy", "y.npy"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(errno.ENOSPC, "No space left")])
@pytest.mark.parametrize("top_k", [None, 3])
def test_failure_mid_write_leaves_output_untouched(tmp_path, logits, monkeypatch, capsys,
                                                   failure, top_k):
    np.save(tmp_path / "x.npy", logits)
    out = tmp_path / ("y.npz" if top_k else "y.npy")
    out.write_bytes(b"previous result")
    writes = []
    original = _arrayfile.NpyWriter.write

    def failing_write(self, start, block):
        writes.append(start)
        if len(writes) == 3:
            raise failure
        original(self, start, block)

    monkeypatch.setattr(_arrayfile.NpyWriter, "write", failing_write)
    monkeypatch.setattr(_plan, "TARGET_BLOCK_BYTES", 23 * 4 * 4)
    args = ["--overwrite"] + (["--top-k", top_k] if top_k else [])
    rc = score(tmp_path / "x.npy", "-o", out, *args)
    err = capsys.readouterr().err
    assert len(writes) == 3
    if failure is KeyboardInterrupt:
        assert rc == 130 and "interrupted" in err
    else:
        assert rc == 1 and "No space left" in err and err.count("\n") == 1
    assert out.read_bytes() == b"previous result"
    assert files_in(tmp_path) == ["x.npy", out.name]  # no temporary file left


@pytest.mark.parametrize("top_k", [None, 3])
def test_interrupt_after_output_appears_says_it_is_complete(tmp_path, logits, monkeypatch,
                                                            capsys, top_k):
    """Ctrl-C right after the rename: the message must not say "not written", and no
    temporary (the top-k parts) may be left."""
    np.save(tmp_path / "x.npy", logits)
    out = tmp_path / ("y.npz" if top_k else "y.npy")
    publish = _output.PendingOutput._publish

    def publish_then_interrupt(self, temp):
        publish(self, temp)
        os.kill(os.getpid(), signal.SIGINT)  # held back until the clean-up is done

    monkeypatch.setattr(_output.PendingOutput, "_publish", publish_then_interrupt)
    rc = score(tmp_path / "x.npy", "-o", out, *(["--top-k", top_k] if top_k else []))
    err = capsys.readouterr().err
    assert rc == 130 and err == f"nbsoftmax score: interrupted; OUTPUT {out} is complete\n"
    assert files_in(tmp_path) == sorted(["x.npy", out.name])
    if top_k is None:
        checks.assert_softmax(np.load(out), logits)
    else:
        with np.load(out) as z:
            np.testing.assert_array_equal(z["indices"], _top_k_reference(logits, 3, -1))


_KILLED_MID_WRITE = """
import os, signal, sys
from nbsoftmax.cli import arrayfile, main

def die(self, start, block):
    os.kill(os.getpid(), signal.SIGKILL)

arrayfile.NpyWriter.write = die
main(["score", *sys.argv[1:]])
"""


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path, logits):
    np.save(tmp_path / "x.npy", logits)
    out = tmp_path / "y.npz"
    proc = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, str(tmp_path / "x.npy"),
                           "-o", str(out), "--top-k", "2"], cwd=REPO, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = [n for n in files_in(tmp_path) if n.endswith(".part")]
    assert len(left) == 2 and all(n.startswith(".y.npz.nbsoftmax.") for n in left)
    live = _output.PendingOutput(str(out), False).new_temp()  # this process's: alive
    assert score(tmp_path / "x.npy", "-o", out, "--top-k", 2) == 0
    assert files_in(tmp_path) == sorted(["x.npy", "y.npz", os.path.basename(live)])


def test_sigterm_is_an_interrupt(tmp_path, logits, monkeypatch, capsys):
    np.save(tmp_path / "x.npy", logits)
    original = _arrayfile.NpyWriter.write

    def write_then_terminate(self, start, block):
        original(self, start, block)
        os.kill(os.getpid(), __import__("signal").SIGTERM)

    monkeypatch.setattr(_arrayfile.NpyWriter, "write", write_then_terminate)
    assert score(tmp_path / "x.npy", "-o", tmp_path / "y.npy") == 130
    assert files_in(tmp_path) == ["x.npy"]


# ------------------------------------------------------------------ progress and summary


def test_quiet_off_a_terminal_with_a_summary_line(tmp_path, logits, capsys):
    np.save(tmp_path / "x.npy", logits)
    assert score(tmp_path / "x.npy", "-o", tmp_path / "y.npy") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    # the work's own rate, then the whole time with start-up, apart
    pattern = (r"nbsoftmax score: 37 rows, 3.4 kB in (\d+\.\d\d) s \([\d.,]+ (bytes|kB|MB|GB)/s, "
               r"[\d,]+ rows/s\); (\d+\.\d\d) s in all with start-up -> (.*)$")
    match = re.fullmatch(pattern, line)
    assert match, line
    assert float(match.group(3)) >= float(match.group(1))
    assert match.group(4) == str(tmp_path / "y.npy")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_counts_bytes():
    assert isinstance(_progress.progress(10, "score", stream=io.StringIO()), _progress._Silent)
    term = _Terminal()
    bar = _progress.progress(10**7, "score", stream=term, use_tqdm=False)
    for _ in range(4):
        bar.update(2_500_000)
    bar.close()
    text = term.getvalue()
    assert "\rscore 100% 10/10 MB  " in text and text.endswith(" MB/s\n")
    assert not re.search(r"\d\.\d{4,}", text)  # no float counts as 117.43199999999999


def test_progress_with_tqdm_counts_whole_bytes(tmp_path, logits, monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    term = _Terminal()
    bar = _progress.progress(1_234_567, "score", stream=term)
    assert isinstance(bar, tqdm.tqdm) and bar.unit == "B" and bar.unit_scale
    bar.update(1_234_567)
    bar.close()
    assert "1.23M/1.23M" in term.getvalue() and "B/s" in term.getvalue()


# ------------------------------------------------------------------ memory


_PEAK = """
import os, subprocess, sys
# Fill the kernel cache first (compiling takes ~150 MB more than loading), as `nbsoftmax
# warmup` would in a deployment; then measure a run that loads the kernels.
subprocess.run([sys.executable, "-m", "nbsoftmax", "warmup", "--dtype", "float32", "--op",
                "softmax"], check=True, capture_output=True)
proc = subprocess.Popen([sys.executable, "-m", "nbsoftmax", "score", *sys.argv[1:]],
                        stderr=subprocess.PIPE, text=True)
stderr = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the warm-up's
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
print(stderr)
"""


@pytest.mark.parametrize("axis", [-1, 0])
def test_peak_memory_stays_under_the_limit(tmp_path, axis):
    """A 320 MB input under --memory-limit 300MB; axis 0 takes the two-pass path."""
    limit = 300 * 10**6
    rows, cols = 80_000, 1_000
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, cols))
    rng = np.random.default_rng(0)
    chunk = rng.standard_normal((5_000, cols), dtype=np.float32) * 3
    for start in range(0, rows, 5_000):
        x[start:start + 5_000] = chunk + start % 7
    x.flush()
    del x
    assert os.path.getsize(tmp_path / "x.npy") > limit
    out = tmp_path / "y.npy"
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, str(tmp_path / "x.npy"), "-o", str(out), "--axis",
         str(axis), "--memory-limit", "300MB"],
        capture_output=True, text=True, cwd=REPO, timeout=240)
    rc, peak = map(int, proc.stdout.split()[:2])
    assert rc == 0, proc.stdout
    assert peak < limit, f"peak RSS {peak / 1e6:.0f} MB over the 300 MB limit"
    y = np.load(out, mmap_mode="r")
    if axis == -1:  # spot checks, a block at a time
        for start in (0, 35_000, rows - 5_000):
            checks.assert_softmax(np.array(y[start:start + 5_000]), chunk + start % 7, axis)
    else:
        full = np.load(tmp_path / "x.npy", mmap_mode="r")
        checks.assert_softmax(np.array(y[:, :3]), np.array(full[:, :3]), 0)
        del full
    del y


_ON_SIMULATED_GPU = """
import sys
import numpy as np
import nbsoftmax
from nbsoftmax.cli import main
from tests import checks
directory = sys.argv[1]
x = (np.random.default_rng(0).standard_normal((20, 9)) * 3).astype(np.float32)
np.save(directory + "/x.npy", x)
assert main(["score", directory + "/x.npy", "-o", directory + "/y.npy", "--device", "cuda"]) == 0
checks.assert_softmax(np.load(directory + "/y.npy"), x)
assert main(["score", directory + "/x.npy", "-o", directory + "/t.npz", "--device", "cuda",
             "--top-k", "2", "--log"]) == 0
with np.load(directory + "/t.npz") as z:
    np.testing.assert_array_equal(z["indices"], np.argsort(-x, axis=1, kind="stable")[:, :2])
print("ok")
"""


def test_device_cuda_on_the_simulator(tmp_path):
    """--device cuda sends each block through the GPU backend (numba's CUDA simulator here)."""
    from tests.subproc import run_python

    out = run_python(_ON_SIMULATED_GPU, env={"NUMBA_ENABLE_CUDASIM": "1"}, args=[str(tmp_path)],
                     timeout=120)
    assert out.strip() == "ok"


_AFTER_A_BIG_PARENT = """
import subprocess, sys
import numpy as np
big = np.ones(400 * 10**6 // 8)  # the parent peaks at 400 MB, then frees it
del big
proc = subprocess.run([sys.executable, "-m", "nbsoftmax", "score", *sys.argv[1:]],
                      capture_output=True, text=True)
print(proc.returncode, proc.stderr)
"""


def test_limit_counts_this_process_not_its_parents_peak(tmp_path, logits):
    """ru_maxrss of a child starts at its parent's peak; the limit must not see that."""
    from tests.subproc import run_python

    np.save(tmp_path / "x.npy", logits)
    out = run_python(_AFTER_A_BIG_PARENT, args=[str(tmp_path / "x.npy"), "-o",
                                                str(tmp_path / "y.npy"), "--memory-limit",
                                                "300MB"])
    assert out.startswith("0 "), out
    checks.assert_softmax(np.load(tmp_path / "y.npy"), logits)
