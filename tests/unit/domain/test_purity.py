"""app/domain stays pure: no module there imports an I/O library (cosmicpython's rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import app.domain

FORBIDDEN = {
    "os", "socket", "subprocess", "threading", "time", "requests", "httpx", "redis", "sqlalchemy", "psycopg2",
    "confluent_kafka", "fastavro", "jwt", "flask", "connexion", "app.adapters", "app.entrypoints",
    "app.service_layer", "app.config",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_no_io() -> None:
    domain_dir = Path(app.domain.__file__).parent
    offenders = {
        f"{path.name}: {name}"
        for path in domain_dir.glob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders
