"""The PostgreSQL test fixture: a real cluster that works when the tests run as root (as CI
does), and a missing PostgreSQL that skips locally but fails under CI=true."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from recovery.common.db import create_engine
from recovery.common.testing.plugin import running_in_ci
from recovery.common.testing.processes import PostgresServer


async def test_the_cluster_answers_and_runs_unprivileged_even_for_root(
        postgres_server: PostgresServer | None) -> None:
    if postgres_server is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries are required in CI")
        pytest.skip("PostgreSQL server binaries are not installed here")
    url = postgres_server.create_database("fixture_check")
    engine = create_engine(url)
    async with engine.connect() as connection:
        data_dir = (await connection.execute(text("SHOW data_directory"))).scalar()
        is_superuser = (await connection.execute(text("SHOW is_superuser"))).scalar()
    await engine.dispose()
    assert data_dir == str(postgres_server.data_dir)
    assert is_superuser == "on"  # the cluster's own role, not the OS user
    _assert_unprivileged_files(postgres_server)


def _assert_unprivileged_files(server: PostgresServer) -> None:
    if os.geteuid() == 0:
        assert server.data_dir.stat().st_uid != 0, "initdb must not run as root"
    # The Unix socket sits in the cluster's folder, which its user can write.
    assert (server.root / f".s.PGSQL.{server.port}").is_socket()


_INNER_TEST = '''
def test_uses_a_database(database_url):
    assert database_url
'''

_INNER_CONFTEST = '''
import recovery.common.testing.plugin as plugin

plugin.postgres_binaries = lambda: None  # as on a machine without PostgreSQL
'''


def _run_without_postgres(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(_INNER_TEST)
    (tmp_path / "conftest.py").write_text(_INNER_CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the kit's plugin; starts faster
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "recovery.common.testing.plugin", "-p",
         "no:cacheprovider", "-rs", "-q", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_without_postgresql_the_postgres_tests_skip_locally_with_a_clear_reason(
        tmp_path: Path) -> None:
    result = _run_without_postgres(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert "PostgreSQL server binaries (initdb, pg_ctl) not found" in result.stdout


def test_without_postgresql_the_postgres_tests_fail_in_ci(tmp_path: Path) -> None:
    result = _run_without_postgres(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout
    assert "1 passed, 1 error" in result.stdout
    assert "required in CI" in result.stdout
