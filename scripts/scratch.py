"""A database of its own for one benchmark run, shared by the scripts in this folder.

SQLite: a file in a fresh temporary folder. PostgreSQL: a schema of its own in the given
database (the URL it hands out sets `search_path` to it). The app's instance folder goes in the
temporary folder too. `close()` drops the schema and removes the folder.
"""

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from app.config import normalize_database_url


class ScratchDatabase:
    def __init__(self, database_url: str | None, name: str):
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        os.environ["INSTANCE_PATH"] = str(self.tmp / "instance")
        self.schema: str | None = None
        self._admin = None
        if database_url:
            base = normalize_database_url(database_url)
            self.schema = f"{name.replace('-', '_')}_{os.getpid()}"
            self._admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            self.url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{self.schema}"
        else:
            self.url = f"sqlite:///{self.tmp / 'bench.db'}"

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.schema else "SQLite"

    def close(self) -> None:
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self._admin.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)
