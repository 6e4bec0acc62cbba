"""The references of tests/reference.py for the extended API, checked against torch and JAX.

The only tests that need torch or JAX, each skipped where it is not installed (as in CI);
every other test compares with tests/reference.py, which these pin to the semantics of
torch.nn.Softmin / softmax(x / T) / cross_entropy and jax.nn.softmax / log_softmax /
logsumexp(where=). The checks (tests/_oracle_checks.py) run in a fresh interpreter: torch and
JAX would otherwise stay loaded in the test process, whose memory tests/test_score.py measures.
"""

import importlib.util

import pytest

from .subproc import run_python


def _importable_or_skip(module):
    # pytest.importorskip without importing it here (see the docstring)
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize("module,check", [("torch", "torch_temperature_and_softmin"),
                                          ("jax", "jax_where"),
                                          ("torch", "torch_cross_entropy")])
def test_reference_against(module, check):
    _importable_or_skip(module)
    run_python(f"from tests import _oracle_checks\n_oracle_checks.{check}()\nprint('ok')",
               env={"JAX_PLATFORMS": "cpu"}, timeout=600)
