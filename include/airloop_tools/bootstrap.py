"""Create the project-local state folder and its secrets (``make setup``). Idempotent.

Writes, under ``$AIRFLOW_HOME`` (git-ignored): ``secrets.env`` (Fernet key, API secret key, JWT secret)
as ``export KEY=VALUE`` lines that both make and bash read, and the simple auth manager's password file
with a random admin password. Existing secrets are kept, so encrypted connections stay readable.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

SECRET_VARS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")


def _new_secret(name: str) -> str:
    if name == "AIRFLOW__CORE__FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file readable by its owner only from the moment it exists (no chmod window),
    replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def ensure_state(airflow_home: Path, admin_password: str | None = None) -> dict[str, str]:
    """Make ``airflow_home`` with generated secrets and an admin password; return the secrets.

    ``admin_password`` given: it is (re)written; else a random one is generated once and kept."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    env_file = airflow_home / "secrets.env"
    values: dict[str, str] = {}
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, value = line[len("export ") :].split("=", 1)
                values[key] = value
    for name in SECRET_VARS:
        values.setdefault(name, _new_secret(name))
    write_private(env_file, "".join(f"export {k}={v}\n" for k, v in values.items()))
    passwords = airflow_home / "simple_auth_manager_passwords.json"
    if admin_password or not passwords.exists():
        write_private(passwords, json.dumps({"admin": admin_password or secrets.token_urlsafe(12)}))
    return values


def private_state_root(root: Path) -> Path:
    """The local state folder (lake, SQLite databases of Airflow and MLflow, Feast, secrets) owner-only:
    created 0700, or narrowed to 0700 when it exists - whatever mode the files inside get, no other user
    can open them."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.stat().st_mode & 0o777 != 0o700:
        root.chmod(0o700)
    return root


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    private_state_root(
        Path(os.environ.get("AIRLOOP_HOME") or Path(__file__).resolve().parents[2] / ".airloop")
    )
    home = Path(os.environ.get("AIRFLOW_HOME", Path.cwd() / ".airloop" / "airflow"))
    ensure_state(home)
    logger.info("state ready in %s (admin password: %s)", home, home / "simple_auth_manager_passwords.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
