"""A built wheel runs the portal: templates, static files and migrations travel inside the package.

The wheel is built from a copy of the source tree (no build isolation: setuptools comes from the test extras, so
nothing is downloaded) and installed, without its dependencies, in a fresh virtual environment. That environment
borrows the dependencies of the running one through a .pth path entry (a path in a .pth file does not run the
editable install's import hook, so the source tree stays out of reach), and every command runs from an empty
working directory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "pyproject.toml",
    "setup.py",
    "README.md",
    "portal",
    "admin",
    "search",
    "staff",
    "templates",
    "static",
    "migrations",
]
FOLDERS = ["templates", "static", "migrations"]  # top level in the source tree, portal/<name> in the wheel
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _run(args, cwd, timeout=120, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env or _clean_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _clean_env() -> dict[str, str]:
    """No setting of the outer environment reaches the installed portal; pip stays offline and quiet."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "FLASK_", "PYTHON", "PIP_")) and k not in ("DATABASE_URL", "VIRTUAL_ENV")
    }
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=JUNK)
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = work / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            dist,
            src,
        ],
        cwd=work,
    )
    (built,) = dist.glob("advocate_portal-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel, and the running environment's dependencies on its path."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=env_dir.parent)
    python = env_dir / "bin" / "python"
    # Installed before the .pth exists: pip must not see the editable install of the running environment.
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        cwd=env_dir,
    )
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env_dir).stdout.strip()
    )
    deps = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "_running_env_dependencies.pth").write_text("".join(f"{path}\n" for path in deps))
    return env_dir


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """An empty working directory, so `python -m` cannot import the source tree from the current directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


def test_wheel_holds_code_templates_static_and_migrations(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for folder in FOLDERS:
        expected = _files(ROOT / folder)
        assert expected, folder
        missing = {f"portal/{folder}/{name}" for name in expected} - names
        assert not missing, f"not in the wheel: {sorted(missing)}"
    for package in ("portal", "admin", "search", "staff"):  # code and package data (portal/data/...)
        missing = {f"{package}/{name}" for name in _files(ROOT / package)} - names
        assert not missing, f"not in the wheel: {sorted(missing)}"
    assert {"portal/migrations/env.py", "portal/data/common-passwords.txt.gz", "portal/static/css/portal.css"} <= names
    # Nothing else lands at the top of site-packages, and no byte code travels.
    assert {name.split("/", 1)[0] for name in names if ".dist-info/" not in name} == {
        "portal",
        "admin",
        "search",
        "staff",
    }
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "License-Expression: MIT" in metadata.splitlines()


def test_installed_portal_migrates_and_serves_pages_and_static_files(venv, elsewhere):
    python = venv / "bin" / "python"
    where = _run(
        [
            python,
            "-c",
            "import sys, portal, portal.app; print(portal.__file__); print(portal.app.files_folder()); "
            "print(*sys.path, sep='\\n')",
        ],
        elsewhere,
    ).stdout.splitlines()
    portal_file, files, *path = (Path(line) for line in where)
    assert portal_file.is_relative_to(venv) and not portal_file.is_relative_to(ROOT), portal_file
    assert files == portal_file.parent, files
    running_env = Path(sys.prefix)
    assert not [p for p in path if p.is_relative_to(ROOT) and not p.is_relative_to(running_env)], path

    # Flask's instance folder for an installed package: <prefix>/var/portal-instance, fresh here.
    instance = venv / "var" / "portal-instance"
    assert not instance.exists()
    upgrade = _run([python, "-m", "flask", "--app", "portal", "db", "upgrade"], elsewhere)
    assert "Running upgrade" in upgrade.stderr, upgrade.stderr
    assert (instance / "portal.db").stat().st_size > 0
    tables = _run(
        [
            python,
            "-c",
            "import sqlite3, sys; print(*(r[0] for r in sqlite3.connect(sys.argv[1]).execute("
            "\"select name from sqlite_master where type='table'\")))",
            instance / "portal.db",
        ],
        elsewhere,
    ).stdout.split()
    assert {"alembic_version", "users"} <= set(tables), tables

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = elsewhere / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [python, "-m", "flask", "--app", "portal", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=elsewhere,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/", timeout=5) as resp:
                    status, page = resp.status, resp.read().decode()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert status == 200
        # main/index.html rendered into base.html (which builds the title from the block)
        title = re.search(r"{% block title %}(.+?){% endblock %}", (ROOT / "templates/main/index.html").read_text())
        assert f"<title>{title[1]} · " in page, page
        assert 'href="/static/css/portal.css' in page
        with urllib.request.urlopen(f"{base}/static/css/portal.css", timeout=5) as resp:
            assert resp.status == 200
            assert resp.read() == (ROOT / "static" / "css" / "portal.css").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=10)
