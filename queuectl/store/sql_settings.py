"""The settings kept in the store, written once for every SQL engine."""

from __future__ import annotations

from queuectl.store.contract import Settings
from queuectl.store.sql_core import SQLCore


class SQLSettings(SQLCore, Settings):
    """`config show/get/set`: key and value text, one row each."""

    def config(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("config_all")}

    def set_config(self, key: str, value: str) -> None:
        with self.batch():
            self._write("config_set", {"key": key, "value": value})
