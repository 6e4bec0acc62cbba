"""Test-run settings: hypothesis profiles, and a seeded random generator per test."""

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# deadline=None: the first example of a test may compile kernels (seconds). Example counts are
# kept small for CI time, and CI (CI set in the environment) draws the same examples every
# run; NBSOFTMAX_HYPOTHESIS_PROFILE=thorough runs ten times more.
settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", parent=settings.get_profile("dev"), derandomize=True, database=None, print_blob=True
)
settings.register_profile("thorough", parent=settings.get_profile("dev"), max_examples=400)
settings.load_profile(
    os.environ.get("NBSOFTMAX_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id, so every test sees fixed, distinct data."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
