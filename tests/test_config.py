"""Configuration: one order (defaults -> instance config file -> PORTAL_* environment -> the test's mapping),
DATABASE_URL as an alias, no usable secret in production, a development secret created once, every setting
checked at start, and SQLite connections set up as documented (pragmas).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import Flask

from portal import create_app
from portal.app import ROOT
from portal.config import DEFAULTS, ConfigError, _instance_secret, limiter_storage, load_config
from portal.extensions import db
from tests.support import base_config

VENV_FLASK = Path(sys.executable).parent / "flask"
PROD_SECRET = "a-long-random-production-secret-0123456789abcdef"
PUBLIC = "https://advocates.example.com"
SINGLE = {"RATELIMIT_SINGLE_PROCESS": True}  # production refuses memory:// limits without it


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No PORTAL_*, DATABASE_URL or FLASK_* setting from the outer environment leaks into these tests."""
    for key in list(os.environ):
        if key.startswith(("PORTAL_", "FLASK_")) or key == "DATABASE_URL":
            monkeypatch.delenv(key)


def bare_app(tmp_path: Path, config_py: str | None = None) -> Flask:
    """A Flask app with its own instance folder in tmp_path, to load configuration into."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    if config_py is not None:
        (instance / "config.py").write_text(config_py)
    return Flask("portal_config_test", instance_path=str(instance), instance_relative_config=True)


def loaded(tmp_path: Path, mapping: dict | None = None, config_py: str | None = None) -> Flask:
    app = bare_app(tmp_path, config_py)
    load_config(app, mapping)
    return app


def without(cfg: dict, *keys: str) -> dict:
    return {k: v for k, v in cfg.items() if k not in keys}


# --- the order -----------------------------------------------------------------------------------------------------


def test_defaults(tmp_path):
    app = loaded(tmp_path)
    cfg = app.config
    for key in ("SITE_NAME", "PASSWORD_MIN_LENGTH", "MAX_CONTENT_LENGTH", "OUTBOX_MAX_ATTEMPTS", "AUTH_RATE_LIMIT"):
        assert cfg[key] == DEFAULTS[key], key
    assert cfg["PORTAL_ENV"] == "development"
    assert cfg["SESSION_COOKIE_HTTPONLY"] is True and cfg["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert cfg["REMEMBER_COOKIE_HTTPONLY"] is True and cfg["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert cfg["SESSION_COOKIE_SECURE"] is False and cfg["REMEMBER_COOKIE_SECURE"] is False
    instance = Path(app.instance_path)
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'portal.db'}"
    assert cfg["SEARCH_INDEX_DIR"] == str(instance / "search-index")
    assert cfg["SECRET_KEY"] == (instance / "secret_key").read_text().strip()


def test_each_layer_overrides_the_one_before(tmp_path, monkeypatch):
    config_py = "\n".join(
        [
            'SITE_NAME = "From file"',
            'COMPANY_NAME = "From file"',
            'TERMS_VERSION = "From file"',
            "LOGIN_MAX_FAILURES = 3",
        ]
    )
    monkeypatch.setenv("PORTAL_COMPANY_NAME", "From env")
    monkeypatch.setenv("PORTAL_TERMS_VERSION", "From env")
    monkeypatch.setenv("PORTAL_PASSWORD_MAX_LENGTH", "99")
    cfg = loaded(tmp_path, {"TERMS_VERSION": "From mapping"}, config_py).config
    assert cfg["PASSWORD_MIN_LENGTH"] == 10  # default only
    assert cfg["LOGIN_MAX_FAILURES"] == 3  # file over default
    assert cfg["SITE_NAME"] == "From file"  # file over default
    assert cfg["COMPANY_NAME"] == "From env"  # env over file
    assert cfg["PASSWORD_MAX_LENGTH"] == 99  # env over default, parsed as JSON
    assert cfg["TERMS_VERSION"] == "From mapping"  # mapping over env over file


def test_env_values_are_parsed_as_json_when_they_can_be(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_AUTO_APPROVE_ADVOCATES", "true")
    monkeypatch.setenv("PORTAL_MAIL_PORT", "2525")
    monkeypatch.setenv("PORTAL_MAIL_SERVER", "smtp.example.com")
    monkeypatch.setenv("PORTAL_POINTS_LEVELS", '[["Member", 0], ["Gold", 1000]]')
    cfg = loaded(tmp_path).config
    assert cfg["AUTO_APPROVE_ADVOCATES"] is True
    assert cfg["MAIL_PORT"] == 2525
    assert cfg["MAIL_SERVER"] == "smtp.example.com"
    assert cfg["POINTS_LEVELS"] == [["Member", 0], ["Gold", 1000]]


def test_create_app_env_then_mapping(app_config, monkeypatch):
    monkeypatch.setenv("PORTAL_SITE_NAME", "Env Portal")
    monkeypatch.setenv("PORTAL_OUTBOX_MAX_ATTEMPTS", "4")
    from_env = create_app(app_config)
    assert from_env.config["SITE_NAME"] == "Env Portal"
    assert from_env.config["OUTBOX_MAX_ATTEMPTS"] == 4
    html = from_env.test_client().get("/auth/login").get_data(as_text=True)
    assert "Env Portal" in html  # the setting reaches the pages

    from_mapping = create_app({**app_config, "SITE_NAME": "Mapping Portal"})
    assert from_mapping.config["SITE_NAME"] == "Mapping Portal"
    assert from_mapping.config["OUTBOX_MAX_ATTEMPTS"] == 4  # env still applies to what the mapping leaves alone
    for a in (from_env, from_mapping):
        with a.app_context():
            db.engine.dispose()


def test_env_read_when_the_app_is_built_not_at_import(tmp_path, monkeypatch):
    first = loaded(tmp_path).config["SITE_NAME"]
    monkeypatch.setenv("PORTAL_SITE_NAME", "Changed later")
    second = loaded(tmp_path).config["SITE_NAME"]
    assert first == "Advocate Portal" and second == "Changed later"


# --- the database URL ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,expected",
    [
        ("postgres://u:p@db.example.com:5432/portal", "postgresql+psycopg://u:p@db.example.com:5432/portal"),
        ("postgresql://u:p@db.example.com/portal", "postgresql+psycopg://u:p@db.example.com/portal"),
        ("postgresql+psycopg://u@db.example.com/portal", "postgresql+psycopg://u@db.example.com/portal"),
        ("sqlite:////var/lib/portal.db", "sqlite:////var/lib/portal.db"),
    ],
)
def test_database_url_alias(tmp_path, monkeypatch, given, expected):
    monkeypatch.setenv("DATABASE_URL", given)
    assert loaded(tmp_path).config["SQLALCHEMY_DATABASE_URI"] == expected


def test_database_url_alias_through_create_app(app_config, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example.com/portal")
    app = create_app(without(app_config, "SQLALCHEMY_DATABASE_URI"))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example.com/portal"
    with app.app_context():
        assert db.engine.url.drivername == "postgresql+psycopg"  # psycopg 3, not the old psycopg2
        assert db.engine.url.host == "db.example.com"
        db.engine.dispose()


def test_database_url_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://alias@db.example.com/a")
    monkeypatch.setenv("PORTAL_SQLALCHEMY_DATABASE_URI", "postgres://prefixed@db.example.com/b")
    assert loaded(tmp_path).config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://prefixed@db.example.com/b"
    mapped = loaded(tmp_path, {"SQLALCHEMY_DATABASE_URI": "postgresql://mapped@db.example.com/c"})
    assert mapped.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://mapped@db.example.com/c"


def test_database_url_in_instance_file(tmp_path, monkeypatch):
    cfg = loaded(tmp_path, config_py='SQLALCHEMY_DATABASE_URI = "postgres://file@db.example.com/f"').config
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://file@db.example.com/f"
    monkeypatch.setenv("DATABASE_URL", "postgres://env@db.example.com/e")
    cfg = loaded(tmp_path).config
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://env@db.example.com/e"  # env over file


def test_empty_database_url_falls_back_to_instance_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "")
    app = loaded(tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{Path(app.instance_path) / 'portal.db'}"


# --- production needs a secret ----------------------------------------------------------------------------------------


def _assert_one_line_naming_the_setting(err: ConfigError) -> None:
    assert isinstance(err, SystemExit)
    message = str(err.code)
    assert message == str(err)
    assert "\n" not in message and message.strip() == message
    assert "PORTAL_SECRET_KEY" in message


def test_production_without_secret_raises_config_error(app_config):
    with pytest.raises(ConfigError) as info:
        create_app({**without(app_config, "SECRET_KEY"), "PORTAL_ENV": "production"})
    _assert_one_line_naming_the_setting(info.value)


def test_production_from_env_without_secret_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path)
    _assert_one_line_naming_the_setting(info.value)


@pytest.mark.parametrize("secret", ["", None])
def test_production_with_empty_secret_raises(tmp_path, secret):
    with pytest.raises(ConfigError):
        loaded(tmp_path, {"PORTAL_ENV": "production", "SECRET_KEY": secret})


def test_production_never_uses_the_development_key_file(tmp_path):
    app = bare_app(tmp_path)
    (Path(app.instance_path) / "secret_key").write_text("development-key-on-disk")
    with pytest.raises(ConfigError):
        load_config(app, {"PORTAL_ENV": "production"})


def test_production_does_not_create_a_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", PROD_SECRET)
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("PORTAL_RATELIMIT_SINGLE_PROCESS", "true")
    app = loaded(tmp_path)
    assert app.config["SECRET_KEY"] == PROD_SECRET
    assert not (Path(app.instance_path) / "secret_key").exists()
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["PREFERRED_URL_SCHEME"] == "https"


def test_production_secret_from_instance_file(tmp_path):
    app = loaded(
        tmp_path,
        {"PORTAL_ENV": "production", "PUBLIC_BASE_URL": PUBLIC, **SINGLE},
        config_py=f'SECRET_KEY = "{PROD_SECRET}"',
    )
    assert app.config["SECRET_KEY"] == PROD_SECRET


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("PORTAL_", "FLASK_")) or k in ("DATABASE_URL", "PYTHONPATH"))
    }
    env.update(PORTAL_ENV="production", **extra)
    return env


def test_flask_cli_in_production_without_secret_prints_one_line(tmp_path):
    proc = subprocess.run(
        [str(VENV_FLASK), "--app", "portal", "routes"],
        cwd=tmp_path,
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    out = (proc.stdout + proc.stderr).strip()
    assert out.splitlines() == [out]  # exactly one line: no traceback, no usage text
    assert "PORTAL_SECRET_KEY" in out and out.startswith("Refusing to start")
    assert "Traceback" not in out
    assert not (tmp_path / "instance").exists()


def test_production_without_secret_cli_prints_one_line(tmp_path):
    """`python -m flask` from the repository, as an operator would start it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_ENV="production", FLASK_APP="portal")
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "routes"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("Refusing to start: set PORTAL_SECRET_KEY")


def test_flask_cli_in_production_with_secret_starts(tmp_path):
    env = _cli_env(
        tmp_path,
        PORTAL_SECRET_KEY=PROD_SECRET,
        PORTAL_PUBLIC_BASE_URL=PUBLIC,
        PORTAL_RATELIMIT_SINGLE_PROCESS="true",
        PORTAL_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'cli.db'}",
        PORTAL_SEARCH_INDEX_DIR=str(tmp_path / "index"),
    )
    proc = subprocess.run(
        [str(VENV_FLASK), "--app", "portal", "routes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"auth\.login\s+GET, POST\s+/auth/login", proc.stdout)


# --- the development secret -------------------------------------------------------------------------------------------


def test_instance_secret_created_once_and_reused(tmp_path):
    key = _instance_secret(tmp_path)
    key_file = tmp_path / "secret_key"
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key_file.read_text() == key
    assert oct(key_file.stat().st_mode & 0o777) == oct(0o600)  # readable by its owner only
    assert _instance_secret(tmp_path) == key
    assert _instance_secret(tmp_path) == key
    other = tmp_path / "other"
    other.mkdir()
    assert _instance_secret(other) != key


def test_instance_secret_keeps_an_existing_key(tmp_path):
    (tmp_path / "secret_key").write_text("my-own-dev-key\n")
    assert _instance_secret(tmp_path) == "my-own-dev-key"
    assert (tmp_path / "secret_key").read_text() == "my-own-dev-key\n"


def test_instance_secret_empty_file_is_an_error_not_an_empty_key(tmp_path):
    (tmp_path / "secret_key").write_text("  \n")
    with pytest.raises(ConfigError) as info:
        _instance_secret(tmp_path, wait=0.05)
    assert "secret_key" in str(info.value) and "\n" not in str(info.value)


def test_instance_secret_concurrent_first_start(tmp_path):
    """Workers starting together: one creates the key, all use the same one, none crashes."""
    for round_ in range(25):
        folder = tmp_path / f"r{round_}"
        folder.mkdir()
        barrier = threading.Barrier(6)
        results: list[str] = []

        def start():
            barrier.wait()
            try:
                results.append(_instance_secret(folder))
            except Exception as exc:  # collected and reported below
                results.append(f"error: {exc!r}")

        threads = [threading.Thread(target=start) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(results) == 6
        assert len(set(results)) == 1, results
        assert re.fullmatch(r"[0-9a-f]{64}", results[0]), results


def test_development_load_config_uses_the_instance_key(tmp_path):
    first = loaded(tmp_path)
    key_file = Path(first.instance_path) / "secret_key"
    assert key_file.exists()
    assert first.config["SECRET_KEY"] == key_file.read_text().strip()
    assert loaded(tmp_path).config["SECRET_KEY"] == first.config["SECRET_KEY"]  # kept across restarts
    assert loaded(tmp_path, {"SECRET_KEY": "explicit"}).config["SECRET_KEY"] == "explicit"


def test_create_app_development_key_lives_in_the_repo_instance_folder(app_config):
    # Reads (and, on a fresh checkout, creates) ROOT/instance/secret_key; never deletes or rewrites it.
    app = create_app(without(app_config, "SECRET_KEY"))
    assert Path(app.instance_path) == ROOT / "instance"
    key_file = ROOT / "instance" / "secret_key"
    assert app.config["SECRET_KEY"] and app.config["SECRET_KEY"] == key_file.read_text().strip()
    again = create_app(without(app_config, "SECRET_KEY"))
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    for a in (app, again):
        with a.app_context():
            db.engine.dispose()


# --- SQLite connections are configured as documented ----------------------------------------------------------------


@pytest.mark.parametrize("busy_ms", [None, 1234])
def test_sqlite_pragmas_read_back_from_a_connection(database_urls, mailbox_server, tmp_path, busy_ms):
    """Whatever backend the suite runs on, the SQLite file (the default database) is set up as documented."""
    cfg = base_config(database_urls["sqlite"], mailbox_server, tmp_path)
    if busy_ms is not None:
        cfg["SQLITE_BUSY_TIMEOUT_MS"] = busy_ms
    application = create_app(cfg)
    with application.app_context():
        try:
            for _ in range(2):  # the first connection of the pool and a later one
                with db.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == (busy_ms or 15000)
                    assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                db.engine.dispose()
        finally:
            db.engine.dispose()


# --- POINTS_LEVELS is checked when the configuration is loaded --------------------------------------------------------


@pytest.mark.parametrize(
    "levels",
    [
        [["Member", 0]],
        [["Legend", 1000], ["Rookie", 0], ["Pro", 100]],  # any order
        (("Member", 0), ("Gold", 4000)),
    ],
)
def test_good_points_levels_load(tmp_path, levels):
    assert loaded(tmp_path, {"POINTS_LEVELS": levels}).config["POINTS_LEVELS"] == levels


@pytest.mark.parametrize(
    "levels,words",
    [
        ([["Bronze", 500], ["Gold", 4000]], "starts at 0 points"),  # 100 points showed "Bronze", no next level
        ([["Member", 0], ["Also member", 0]], "two levels start at 0"),
        ([["Member", 0], ["Gold", -5]], "0 or more"),
        ([["Member", 0], ["Gold", 1.5]], "whole number"),
        ([["Member", 0], ["Gold", "500"]], "whole number"),
        ([["Member", 0], ["Gold", True]], "whole number"),
        ([["Member", 0], ["", 500]], "non-empty name"),
        ([["Member", 0], ["   ", 500]], "non-empty name"),
        ([["Member", 0], [None, 500]], "non-empty name"),
        ([["Member", 0], ["Gold"]], "pair"),
        ([["Member", 0], "Gold"], "pair"),
        ([], "non-empty list"),
        ("Member", "non-empty list"),
        ({"Member": 0}, "non-empty list"),
    ],
)
def test_bad_points_levels_refuse_to_start(tmp_path, levels, words):
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, {"POINTS_LEVELS": levels})
    message = str(info.value.code)
    assert "POINTS_LEVELS" in message and words in message and "\n" not in message


def test_bad_points_levels_from_the_environment_refuse_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_POINTS_LEVELS", '[["Bronze", 500], ["Gold", 4000]]')
    with pytest.raises(ConfigError, match="starts at 0 points"):
        loaded(tmp_path)


def _flask_cli_refusal(tmp_path, **env) -> str:
    """What `flask routes` prints when production settings ``env`` refuse to start (asserted: one line)."""
    env = _cli_env(
        tmp_path,
        PORTAL_SECRET_KEY=PROD_SECRET,
        PORTAL_PUBLIC_BASE_URL=PUBLIC,
        **{"PORTAL_RATELIMIT_SINGLE_PROCESS": "true", **env},
    )
    proc = subprocess.run(
        [str(VENV_FLASK), "--app", "portal", "routes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0 and out.splitlines() == [out], out
    return out


def test_flask_cli_with_bad_points_levels_prints_one_line(tmp_path):
    assert "POINTS_LEVELS" in _flask_cli_refusal(tmp_path, PORTAL_POINTS_LEVELS='[["Bronze", 500]]')


# --- the public URL, trusted hosts, the proxy, mail -------------------------------------------------------------------


def test_production_without_public_base_url_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, {"PORTAL_ENV": "production", "SECRET_KEY": PROD_SECRET})
    message = str(info.value.code)
    assert "PORTAL_PUBLIC_BASE_URL" in message and "\n" not in message


def test_development_public_base_url_default(tmp_path):
    cfg = loaded(tmp_path).config
    assert cfg["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"
    assert cfg["TRUSTED_HOSTS"] is None  # development answers to any host


@pytest.mark.parametrize(
    "url",
    [
        "advocates.example.com",
        "ftp://advocates.example.com",
        "https://",
        "/portal",
        "https://advocates.example.com/?x=1",
        42,
    ],
)
def test_bad_public_base_url_refuses_to_start(tmp_path, url):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        loaded(tmp_path, {"PUBLIC_BASE_URL": url})


def test_production_trusts_only_the_public_host(tmp_path):
    cfg = loaded(
        tmp_path,
        {
            "PORTAL_ENV": "production",
            "SECRET_KEY": PROD_SECRET,
            "PUBLIC_BASE_URL": "https://Advocates.Example.com:8443/portal",
            **SINGLE,
        },
    ).config
    assert cfg["TRUSTED_HOSTS"] == ["advocates.example.com"]


@pytest.mark.parametrize("hosts", [["advocates.example.com", "10.0.0.5"], []])
def test_production_trusted_hosts_can_be_configured(tmp_path, hosts):
    cfg = loaded(
        tmp_path,
        {
            "PORTAL_ENV": "production",
            "SECRET_KEY": PROD_SECRET,
            "PUBLIC_BASE_URL": PUBLIC,
            "TRUSTED_HOSTS": hosts,
            **SINGLE,
        },
    ).config
    assert cfg["TRUSTED_HOSTS"] == hosts


def test_mail_outbox_and_proxy_defaults(tmp_path):
    cfg = loaded(tmp_path).config
    assert cfg["MAIL_TIMEOUT"] == 10 and cfg["OUTBOX_RETENTION_DAYS"] == 30
    assert cfg["OUTBOX_SEND_AFTER_RESPONSE"] is True  # TESTING is off here
    assert loaded(tmp_path, {"TESTING": True}).config["OUTBOX_SEND_AFTER_RESPONSE"] is False
    assert all(cfg[f"PROXY_FIX_X_{k}"] == 0 for k in ("FOR", "PROTO", "HOST", "PORT", "PREFIX"))


@pytest.mark.parametrize(
    "key,value",
    [
        ("PROXY_FIX_X_FOR", -1),
        ("PROXY_FIX_X_PROTO", "1"),
        ("PROXY_FIX_X_HOST", True),
        ("OUTBOX_RETENTION_DAYS", 2.5),
        ("MAIL_TIMEOUT", 0),
        ("MAIL_TIMEOUT", "10"),
    ],
)
def test_bad_numbers_refuse_to_start(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        loaded(tmp_path, {key: value})


# --- production counts rate limits in one place for every worker ------------------------------------------------------

PRODUCTION = {"PORTAL_ENV": "production", "SECRET_KEY": PROD_SECRET, "PUBLIC_BASE_URL": PUBLIC}


def test_production_with_per_process_limits_refuses_to_start(tmp_path):
    """gunicorn -w 2 with memory:// let 20 wrong passwords a minute through instead of 10 (issue 11)."""
    for uri in ("memory://", "async+memory://", None, ""):
        with pytest.raises(ConfigError) as info:
            loaded(tmp_path, {**PRODUCTION, "RATELIMIT_STORAGE_URI": uri})
        message = str(info.value.code)
        assert message.startswith("Refusing to start: set PORTAL_RATELIMIT_STORAGE_URI=redis://")
        assert "\n" not in message
        assert "PORTAL_RATELIMIT_SINGLE_PROCESS=true" in message


def test_production_with_the_default_limits_from_the_environment_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", PROD_SECRET)
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", PUBLIC)
    with pytest.raises(ConfigError, match="PORTAL_RATELIMIT_STORAGE_URI"):
        loaded(tmp_path)
    monkeypatch.setenv("PORTAL_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    assert loaded(tmp_path).config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "uri",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://:secret@cache.example.com:6380/1",
        "redis+unix:///run/redis/redis.sock",
        "redis+sentinel://h1:26379,h2:26379/portal",
    ],
)
def test_production_starts_with_a_shared_limit_storage(tmp_path, uri):
    assert loaded(tmp_path, {**PRODUCTION, "RATELIMIT_STORAGE_URI": uri}).config["RATELIMIT_STORAGE_URI"] == uri


def test_production_with_memory_limits_starts_when_one_process_is_declared(tmp_path, monkeypatch):
    assert loaded(tmp_path, {**PRODUCTION, **SINGLE}).config["RATELIMIT_STORAGE_URI"] == "memory://"
    monkeypatch.setenv("PORTAL_RATELIMIT_SINGLE_PROCESS", "true")  # JSON: a bool
    assert loaded(tmp_path, PRODUCTION).config["RATELIMIT_SINGLE_PROCESS"] is True


def test_development_counts_in_memory_without_being_asked(tmp_path):
    cfg = loaded(tmp_path).config
    assert cfg["RATELIMIT_STORAGE_URI"] == "memory://" and cfg["RATELIMIT_SINGLE_PROCESS"] is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_single_process_must_be_true_or_false(tmp_path, value):
    with pytest.raises(ConfigError, match="RATELIMIT_SINGLE_PROCESS must be true or false"):
        loaded(tmp_path, {"RATELIMIT_SINGLE_PROCESS": value})


def test_flask_cli_in_production_with_per_process_limits_prints_one_line(tmp_path):
    out = _flask_cli_refusal(tmp_path, PORTAL_RATELIMIT_SINGLE_PROCESS="false")
    assert out.startswith("Refusing to start: set PORTAL_RATELIMIT_STORAGE_URI=redis://")


@pytest.mark.parametrize(
    "uri,label,shared",
    [
        ("memory://", "memory://", False),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379", True),
        ("redis://:s3cret@cache.internal:6380/1", "redis://cache.internal:6380", True),
        ("rediss://portal:s3cret@cache.internal:6380/0?password=s3cret#x", "rediss://cache.internal:6380", True),
        ("redis+unix://:s3cret@/run/redis.sock?db=1&password=s3cret", "redis+unix:///run/redis.sock", True),
        ("redis+sentinel://u:s3cret@h1:26379,h2:26379/portal", "redis+sentinel://h1:26379,h2:26379", True),
        ("memcached://m.internal:11211", "memcached://m.internal:11211", True),
    ],
)
def test_limiter_storage_is_described_without_credentials(uri, label, shared):
    storage = limiter_storage(uri)
    assert (storage.label, storage.shared) == (label, shared)
    assert "s3cret" not in repr(storage)


# --- advocate and points settings are checked at start --------------------------------------------------------------


def test_profile_and_points_settings_defaults_load(tmp_path):
    cfg = loaded(tmp_path).config
    assert (cfg["PROFILE_STALE_DAYS"], cfg["POINTS_REFERRAL"], cfg["POINTS_PROFILE_COMPLETE"]) == (180, 250, 100)
    cfg = loaded(tmp_path, {"PROFILE_STALE_DAYS": 1, "POINTS_REFERRAL": 0, "POINTS_PROFILE_COMPLETE": 0}).config
    assert (cfg["PROFILE_STALE_DAYS"], cfg["POINTS_REFERRAL"], cfg["POINTS_PROFILE_COMPLETE"]) == (1, 0, 0)


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("PROFILE_STALE_DAYS", 0, "1 or more"),
        ("PROFILE_STALE_DAYS", -30, "1 or more"),
        ("PROFILE_STALE_DAYS", 90.5, "whole number"),
        ("PROFILE_STALE_DAYS", "180", "whole number"),
        ("PROFILE_STALE_DAYS", True, "whole number"),
        ("PROFILE_STALE_DAYS", None, "whole number"),
        ("POINTS_REFERRAL", -1, "0 or more"),
        ("POINTS_REFERRAL", 2.5, "whole number"),
        ("POINTS_REFERRAL", "250", "whole number"),
        ("POINTS_REFERRAL", False, "whole number"),
        ("POINTS_PROFILE_COMPLETE", -100, "0 or more"),
        ("POINTS_PROFILE_COMPLETE", 1.0, "whole number"),
        ("POINTS_PROFILE_COMPLETE", "100", "whole number"),
        ("POINTS_PROFILE_COMPLETE", None, "whole number"),
    ],
)
def test_bad_profile_and_points_settings_refuse_to_start(tmp_path, key, value, words):
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, {key: value})
    message = str(info.value.code)
    assert key in message and words in message and repr(value) in message and "\n" not in message


def test_bad_stale_days_from_the_environment_refuse_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_PROFILE_STALE_DAYS", "0")
    with pytest.raises(ConfigError, match="PROFILE_STALE_DAYS"):
        loaded(tmp_path)
    monkeypatch.setenv("PORTAL_PROFILE_STALE_DAYS", "90")
    assert loaded(tmp_path).config["PROFILE_STALE_DAYS"] == 90


def test_flask_cli_with_negative_points_prints_one_line(tmp_path):
    assert "POINTS_PROFILE_COMPLETE" in _flask_cli_refusal(tmp_path, PORTAL_POINTS_PROFILE_COMPLETE="-5")
