"""How the database would run a statement, for tests that a read is an index search."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.common.db import is_sqlite


async def query_plan(engine: AsyncEngine, statement: object) -> str:
    """The plan of ``statement`` (its parameters bound), as the backend explains it.

    A test table holds few rows, so on PostgreSQL the sequential scan is forbidden: the plan
    then shows whether an index can do the work at all."""
    compiled = statement.compile(engine.sync_engine,  # type: ignore[attr-defined]
                                 compile_kwargs={"literal_binds": True})
    async with engine.connect() as connection:
        if is_sqlite(str(engine.url)):
            rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            return "\n".join(str(row[-1]) for row in rows)
        await connection.execute(text("SET enable_seqscan = off"))
        rows = await connection.execute(text(f"EXPLAIN {compiled}"))
        return "\n".join(str(row[0]) for row in rows)
