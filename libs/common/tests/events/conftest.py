"""Fixtures of the events tests: a toy service's database and a NATS server of its own."""

from collections.abc import AsyncIterator

import pytest
from eventkit_toy import create_toy_schema
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import create_engine, session_factory
from recovery.common.testing.processes import NatsServer


@pytest.fixture
async def toy_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await create_toy_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def toy_sessions(toy_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(toy_engine)


@pytest.fixture
def nats(own_nats_server: NatsServer) -> NatsServer:
    """Each events test restarts NATS at will, so it gets a server of its own."""
    return own_nats_server
