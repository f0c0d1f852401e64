import pytest

from tests.fakes import fake


@pytest.fixture
def connectors():
    """Core tests run with the fake connector only: no platform is needed to test core."""
    return (fake,)
