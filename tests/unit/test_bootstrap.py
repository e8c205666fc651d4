"""Generated secrets: created owner-only, kept across runs, an admin password given is (re)written."""

from __future__ import annotations

import json
import os

from airloop_tools.bootstrap import SECRET_VARS, ensure_state, private_state_root


def test_secrets_are_owner_only_from_creation_and_kept(tmp_path, monkeypatch):
    created = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    first = ensure_state(tmp_path)
    assert set(first) == set(SECRET_VARS)
    assert created and all(mode == 0o600 for mode in created)  # never created wider, then narrowed
    for name in ("secrets.env", "simple_auth_manager_passwords.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    password = json.loads((tmp_path / "simple_auth_manager_passwords.json").read_text())["admin"]
    assert ensure_state(tmp_path) == first  # kept: encrypted connections stay readable
    assert json.loads((tmp_path / "simple_auth_manager_passwords.json").read_text())["admin"] == password
    ensure_state(tmp_path, admin_password="chosen-by-the-operator")
    assert json.loads((tmp_path / "simple_auth_manager_passwords.json").read_text()) == {
        "admin": "chosen-by-the-operator"
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_state_folder_is_owner_only_new_or_existing(tmp_path):
    assert private_state_root(tmp_path / "new" / ".airloop").stat().st_mode & 0o777 == 0o700
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    assert private_state_root(existing).stat().st_mode & 0o777 == 0o700
