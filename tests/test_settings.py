"""Environment parsing and the deployment system checks (stable ids, clear hints)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import describe_url, env_bool, parse_database_url

ROOT = Path(settings.BASE_DIR)


def check(**env: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py check` in a fresh process with exactly these settings."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}  # noqa: S108
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 50,
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5ISE=",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/switchboard",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "ALLOWED_HOSTS": "example.com",
}


def test_a_complete_production_configuration_passes() -> None:
    result = check(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "switchboard." not in result.stderr


def test_missing_secret_key_is_reported() -> None:
    result = check(**{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "switchboard.E001" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_runs_without_a_secret_key() -> None:
    result = check(DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_production_without_redis_is_reported() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "REDIS_URL"}
    result = check(**env)
    assert result.returncode != 0
    assert "switchboard.E002" in result.stderr
    assert "switchboard.W001" in result.stderr


def test_missing_or_malformed_encryption_keys_are_reported() -> None:
    missing = check(**{k: v for k, v in PRODUCTION.items() if k != "FIELD_ENCRYPTION_KEYS"})
    assert "switchboard.E004" in missing.stderr
    malformed = check(**{**PRODUCTION, "FIELD_ENCRYPTION_KEYS": "not-a-key"})
    assert "switchboard.E005" in malformed.stderr


def test_unknown_database_scheme_is_reported_without_the_password() -> None:
    result = check(**{**PRODUCTION, "DATABASE_URL": "mysql://root:hunter2@db/switchboard"})
    assert result.returncode != 0
    assert "switchboard.E003" in result.stderr
    assert "'mysql'" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://app:p%40ss@db.internal:6432/switchboard?sslmode=require",
            {
                "NAME": "switchboard",
                "USER": "app",
                "PASSWORD": "p@ss",
                "HOST": "db.internal",
                "PORT": "6432",
                "OPTIONS": {"sslmode": "require"},
            },
        ),
        ("sqlite:////var/lib/app/db.sqlite3", {"NAME": "/var/lib/app/db.sqlite3"}),
        ("sqlite:///db.sqlite3", {"NAME": "db.sqlite3"}),
    ],
)
def test_database_urls(url: str, expected: dict[str, object]) -> None:
    parsed = parse_database_url(url)
    assert {key: parsed[key] for key in expected} == expected


def test_describe_url_hides_the_password() -> None:
    assert describe_url("postgres://app:secret@db/x") == "postgres://app:***@db/x"


def test_booleans_are_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG")
    monkeypatch.setenv("SOME_FLAG", "Yes")
    assert env_bool("SOME_FLAG") is True


def test_every_variable_settings_read_is_documented() -> None:
    import re

    source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z][A-Z0-9_]*)"', source))
    documented = set(
        re.findall(
            r"^\| `([A-Z][A-Z0-9_]*)` \|", (ROOT / "docs" / "configuration.md").read_text(), re.M
        )
    )
    assert read - documented == set(), "document these in docs/configuration.md"
    assert documented - read == set(), "docs/configuration.md describes variables nothing reads"
