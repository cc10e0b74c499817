from __future__ import annotations

import pytest

from tests.support.databases import throwaway_db
from tests.support.manager import start_manager
from tests.support.markers import mark_services, refuse_engine_test_in_parallel


def pytest_collection_modifyitems(items):
    # engine / postgres / redis / browser, from what each test uses (tests/support/markers.py)
    mark_services(items)


def pytest_runtest_setup(item):
    refuse_engine_test_in_parallel(item)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def manager(request, tmp_path_factory):
    """A manager with a fresh database, once on SQLite and once on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("manager")
    async with throwaway_db(request.param, tmp) as url:
        h = await start_manager(url, tmp)
        try:
            yield h
        finally:
            await h.close()
