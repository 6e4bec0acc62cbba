"""The command line explains itself, and `bench` rejects bad arguments before running.

Help: `nbsoftmax --version`; `nbsoftmax` alone prints the help; every option of every
command has a help text, and no help shows reStructuredText markup. `bench`: each bad
argument is one `nbsoftmax bench: error: ...` line and exit status 2, before any case runs;
it times logsumexp, cross_entropy and softmax_topk too, and says which peers were left out.
"""

import argparse
import importlib.util
import json
import subprocess
import sys

import pytest

import nbsoftmax
from nbsoftmax.cli import bench, bench_peers, main
from nbsoftmax.cli.main import build_parser


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_version():
    out = subprocess.run([sys.executable, "-m", "nbsoftmax", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"nbsoftmax {nbsoftmax.__version__}"


def test_no_arguments_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nbsoftmax")
    for command in _commands()[1]:
        assert f"\n    {command} " in out, command


def test_every_option_of_every_command_has_help():
    parser, commands = _commands()
    for name, command in [("nbsoftmax", parser)] + list(commands.items()):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings)


@pytest.mark.parametrize("command", [None, "demo", "info", "warmup", "bench", "score"])
def test_help_output_has_no_markup(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(([command] if command else []) + ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: nbsoftmax" in out and "``" not in out, out
    if command in ("warmup", "bench"):
        assert "--dtype" in out and out.count("\n  -") >= 3


# ------------------------------------------------------------------ bench's argument checks


@pytest.fixture
def no_run(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a benchmark ran before the arguments were checked")

    monkeypatch.setattr(bench, "run_case", fail)


@pytest.mark.parametrize("argv, message", [
    (["--shapes", "0x10"], "--shapes 0x10 has a dimension of size 0"),
    (["--shapes", "16x0x4"], "--shapes 16x0x4 has a dimension of size 0"),
    (["--shapes", "4x-2"], "--shapes 4x-2 has a dimension of size -2"),
    (["--shapes", "4096xabc"], "--shapes '4096xabc' is not a shape"),
    (["--shapes", "4x10", "--axis", "5"], "--axis 5 is out of range for --shapes 4x10"),
    (["--shapes", "4x10", "--axis", "-3"], "--axis -3 is out of range"),
    (["--threads", "-3"], "--threads -3 is out of range; expected 1 to"),
    (["--threads", "0"], "--threads 0 is out of range"),
    (["--threads", "100000"], "--threads 100000 is out of range"),
    (["--min-time", "nan"], "--min-time nan is not a positive number of seconds"),
    (["--min-time", "inf"], "--min-time inf is not a positive"),
    (["--min-time", "0"], "--min-time 0.0 is not a positive"),
    (["--peers", "numpy", "pytorch"], "--peers has unknown names ['pytorch']"),
    (["--k", "0"], "--k 0 must be at least 1"),
    (["--ops", "softmax_topk", "--shapes", "4x3", "--k", "5"], "--k 5 is larger than the rows"),
    (["--ops", "cross_entropy", "--shapes", "4x3x2"], "no case to run"),
    (["--json", "/nonexistent-folder/results.json"], "the folder /nonexistent-folder does not"),
    (["--json", "/"], "--json / is a directory"),
    (["--json", sys.executable + "/results.json"], "does not exist"),  # a folder that is a file
])
def test_bench_rejects_bad_arguments_before_running(argv, message, no_run, capsys):
    assert main(["bench"] + argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbsoftmax bench: error: "), captured.err
    assert message in lines[0], lines[0]
    assert captured.out == ""


def test_bench_plot_without_matplotlib_fails_before_running(no_run, capsys, monkeypatch,
                                                            tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a))
    assert main(["bench", "--plot", str(tmp_path / "plot.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nbsoftmax bench: error: --plot") and "needs matplotlib" in err
    assert not (tmp_path / "plot.png").exists()


def test_bench_times_every_function_and_names_missing_peers(capsys, monkeypatch, tmp_path):
    """A tiny run of each operation; torch and JAX hidden as if not installed."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "jax") else find_spec(name, *a))
    assert bench_peers.missing_peers() == ["torch", "jax.jit"]
    out_json = tmp_path / "bench.json"
    argv = ["bench", "--ops", "softmax", "logsumexp", "cross_entropy", "softmax_topk",
            "--shapes", "4x16", "--min-time", "0.001", "--k", "3", "--json", str(out_json)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for op in ("softmax 4x16", "logsumexp 4x16", "cross_entropy 4x16", "softmax_topk 4x16"):
        assert op in out, out
    assert "left out (not installed): torch, jax.jit" in out
    assert "x torch" not in out
    results = json.loads(out_json.read_text())
    assert [r["op"] for r in results["results"]] == ["softmax", "logsumexp", "cross_entropy",
                                                      "softmax_topk"]
    assert all(r["max_abs_error"] < 1e-5 for r in results["results"]), results["results"]
    assert results["left_out"] == ["torch", "jax.jit"]
