"""The README runs as written, and its API table matches the real signatures.

The ```python blocks are run in order in one namespace, as a reader pastes them into one
session (later blocks use ``logits`` from the first). A block that imports an optional
package (CuPy, Dask) is skipped when that package is missing, or when it needs a GPU that
this process does not have, with the reason. The API table is parsed and each signature in
it compared with ``inspect.signature`` of the public function (parameter names, kinds and
defaults), leaving out ``device=`` and ``stream=``, which the sentence below the table covers.
"""

import ast
import importlib.util
import inspect
import re
import warnings

import pytest

import nbsoftmax

from .subproc import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)

# package imported by a block -> (pip name, needs a CUDA GPU)
OPTIONAL = {"cupy": ("cupy-cuda12x", True), "dask": ('nbsoftmax[dask]', False),
            "torch": ("torch", False), "jax": ("jax", False)}


def _imports(block):
    names = set()
    for node in ast.walk(ast.parse(block)):
        if isinstance(node, ast.Import):
            names.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _missing(block):
    """Why this block cannot run here, or None."""
    for name in sorted(_imports(block) & set(OPTIONAL)):
        pip_name, needs_gpu = OPTIONAL[name]
        if importlib.util.find_spec(name) is None:
            return f"needs {name}, which is not installed (pip install {pip_name})"
        if needs_gpu:
            return (f"needs {name} on a CUDA GPU: run `python -m pytest tests/test_readme.py` on "
                    "a GPU machine with it installed")
    return None


@pytest.fixture(scope="module")
def session():
    return {"namespace": {"__name__": "readme"}, "ran": 0}


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("number", range(len(BLOCKS)), ids=lambda n: f"block{n}")
def test_block_runs(session, number):
    # run the blocks before this one that have not run (e.g. under -k), then this one
    for earlier in range(session["ran"], number + 1):
        block = BLOCKS[earlier]
        reason = _missing(block)
        if earlier == number and reason:
            pytest.skip(f"README block {number}: {reason}")
        if reason is None:
            with warnings.catch_warnings():
                # the README's own arrays: a NumPy warning there would be a README bug too
                warnings.simplefilter("error")
                exec(compile(block, f"README.md block {earlier}", "exec"), session["namespace"])
        session["ran"] = earlier + 1


def _table_rows():
    """{name: signature text} from the API table: each name of a row's first cell with the
    row's signature of that name, or of its first name (`a`, `b` rows share one)."""
    table = README.split("| function | signature |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`(\w+)`", cells[0])
        sigs = {m.group(1): m.group(0)
                for m in re.finditer(r"(?<=`)(\w+)\((.*?)\)(?=`)", cells[1])}
        shared = next(sigs[n] for n in names if n in sigs)
        for name in names:
            rows[name] = sigs.get(name, shared)
    return rows


def _parameters(sig_text):
    """(name, kind, default) of each parameter of a README signature."""
    args = ast.parse(f"def {sig_text}: pass").body[0].args
    out = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults):
        value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        out.append((arg.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, value))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        out.append((arg.arg, inspect.Parameter.KEYWORD_ONLY, value))
    return out


ROWS = _table_rows()


def test_table_lists_every_public_function():
    assert sorted(set(nbsoftmax.__all__) - set(ROWS)) == []


@pytest.mark.parametrize("name", sorted(ROWS))
def test_table_signature_is_the_real_one(name):
    real = inspect.signature(getattr(nbsoftmax, name)).parameters.values()
    want = [(p.name, p.kind, p.default) for p in real if p.name not in ("device", "stream")]
    got = _parameters("f(" + ROWS[name].partition("(")[2])
    assert got == want, f"README: {ROWS[name]}\nreal: {name}{real}"
    if name[0].islower() and name != "precompile" and not name.startswith("segment_"):
        assert {"device", "stream"} <= {p.name for p in real}  # the sentence under the table
