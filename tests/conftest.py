"""Shared fixtures."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.factories import T0


@pytest.fixture
def now() -> datetime:
    """A fixed 'now' for domain functions, which take the time as an argument."""
    return T0
