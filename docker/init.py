"""The compose stack's init job (``airloop-init``): everything the long-running services need, idempotently.

1. the PostgreSQL databases named by the configured DSNs exist (Airflow metadata, MLflow backend store,
   Airloop's Feast registry + live log), created through the server's ``postgres`` database;
2. Airflow's secrets exist in the secrets volume (``AIRLOOP_SECRETS_DIR``): Fernet key, API secret, JWT
   secret, generated once unless given as variables, and the admin password (``AIRLOOP_ADMIN_PASSWORD``,
   else generated once); no secret is ever in an image;
3. ``airflow db migrate``.
Run again after an upgrade: it migrates and keeps every secret.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from airloop_tools.bootstrap import SECRET_VARS, ensure_state

logger = logging.getLogger("airloop.init")

DSN_VARS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "MLFLOW_BACKEND_STORE_URI", "AIRLOOP_POSTGRES_DSN")


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit("postgresql://" + url.split("://", 1)[1])
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            logger.info("database %s exists", name)
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        logger.info("database %s created", name)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="airloop-init: %(message)s", stream=sys.stderr)
    for var in DSN_VARS:
        url = os.environ.get(var, "")
        if url.split("://", 1)[0].split("+")[0] in ("postgresql", "postgres"):
            ensure_database(url)
    folder = Path(os.environ.get("AIRLOOP_SECRETS_DIR", "/opt/airflow/secrets"))
    values = ensure_state(folder, os.environ.get("AIRLOOP_ADMIN_PASSWORD") or None)
    given = [name for name in SECRET_VARS if os.environ.get(name)]
    logger.info(
        "secrets in %s (%d given as variables, %d generated once)",
        folder,
        len(given),
        len(values) - len(given),
    )
    env = {**os.environ, **{k: v for k, v in values.items() if not os.environ.get(k)}}
    subprocess.run(["airflow", "db", "migrate"], check=True, env=env)
    users = json.loads((folder / "simple_auth_manager_passwords.json").read_text())
    logger.info("ready: Airflow users %s (passwords in the secrets volume)", ", ".join(sorted(users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
