"""The project's shape: `platform/` holds no Python and nothing shadows the standard library."""

import platform
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
EXPECTED_TOP_LEVEL = {
    "manage.py",
    "pyproject.toml",
    "README.md",
    "compose.yaml",
    "Makefile",
    "config",
    "tenants",
    "agents",
    "calls",
    "workers",
    "billing",
    "console",
    "templates",
    "platform",
    "tests",
    "docs",
}
APPS = ["tenants", "agents", "calls", "workers", "billing", "console"]


def test_the_standard_library_platform_module_still_works() -> None:
    assert platform.__file__ is not None
    assert Path(platform.__file__).parent != ROOT / "platform"
    assert platform.system()


def test_no_top_level_package_shadows_the_standard_library() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert not (packages | modules) & set(sys.stdlib_module_names)


def test_platform_holds_no_python() -> None:
    assert not list((ROOT / "platform").rglob("*.py"))
    assert (ROOT / "platform" / "docker" / "Dockerfile").is_file()
    assert (ROOT / "platform" / "kubernetes").is_dir()


def test_the_planned_layout_exists() -> None:
    assert {p.name for p in ROOT.iterdir()} >= EXPECTED_TOP_LEVEL


def test_every_app_is_registered() -> None:
    for app in APPS:
        assert apps.is_installed(app), app
