"""Load named SQL statements from a queries file (`-- name: x` blocks)."""

from __future__ import annotations

import os


def _read(directory: str, filename: str) -> str:
    with open(os.path.join(directory, filename), encoding="utf-8") as f:
        return f.read()


def load(directory: str, filename: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in _read(directory, filename).splitlines():
        if line.startswith("-- name:"):
            if name:
                queries[name] = "\n".join(lines).strip()
            name, lines = line.split(":", 1)[1].strip(), []
        elif name and not line.startswith("--"):
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines).strip()
    return queries


def migrations(directory: str) -> list[tuple[int, str]]:
    """(version, script) for every NNNN_*.sql file in `directory`, in order."""
    found = []
    for filename in os.listdir(directory):
        stem = filename.split("_", 1)[0]
        if filename.endswith(".sql") and stem.isdigit():
            found.append((int(stem), _read(directory, filename)))
    return sorted(found)
