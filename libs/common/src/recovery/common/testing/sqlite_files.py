"""What an SQLite database file holds by itself, without its write-ahead log."""

import contextlib
import shutil
import sqlite3
import tempfile
from pathlib import Path


def count_in_file_alone(database: Path, query: str) -> int:
    """The count ``query`` gives on a copy of the database file without its ``-wal`` file,
    so only what a fold of the log has brought back into the file; 0 where not even the
    table has been folded back."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / database.name
        shutil.copyfile(database, copy)
        with contextlib.closing(sqlite3.connect(copy)) as connection:
            try:
                return int(connection.execute(query).fetchone()[0])
            except sqlite3.OperationalError:
                return 0
