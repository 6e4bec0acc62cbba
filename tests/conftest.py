"""Test-run settings: hypothesis profiles, and a seeded random generator per test."""

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# deadline=None: the first example of a test may compile kernels (seconds). Example counts are
# kept small for CI; NBSOFTMAX_HYPOTHESIS_PROFILE=thorough runs ten times more.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=400)
settings.load_profile(os.environ.get("NBSOFTMAX_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id, so every test sees fixed, distinct data."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
