"""Shared fixtures."""

import pytest

from helpers import labelled_molecules


@pytest.fixture
def molecules():
    return labelled_molecules()
