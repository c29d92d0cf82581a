"""Migrations: from an empty database they build exactly the schema the models describe (on SQLite and,
with TEST_DATABASE_URL, on PostgreSQL), they go down to base and up again, one step at a time too, and
stepping down and up keeps existing rows.

Each test gets its own empty database: a SQLite file in tmp_path, or a throwaway PostgreSQL database
(portal_mig_<random>, the empty_db_url fixture of tests/conftest.py), never the shared test database.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import CheckConstraint, inspect, select, text

from portal.extensions import db
from portal.models import Base, OutboxMessage, Role, Status, User

APP_TABLES = {t.name for t in Base.metadata.sorted_tables}


# --- helpers ----------------------------------------------------------------------------------------------------------


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())


def revision_chain() -> list[str]:
    """Revisions from base to head."""
    return [r.revision for r in reversed(list(script().walk_revisions("base", "heads")))]


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


def schema_diff() -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def reflected_details() -> dict:
    """What compare_metadata does not look at: CHECK constraints and ON DELETE rules of foreign keys."""
    insp = inspect(db.engine)
    out = {}
    for table in sorted(APP_TABLES):
        checks = sorted(c["name"] for c in insp.get_check_constraints(table) if c.get("name"))
        fks = sorted(
            (
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                (fk.get("options") or {}).get("ondelete", "").upper() or None,
            )
            for fk in insp.get_foreign_keys(table)
        )
        out[table] = (checks, fks)
    return out


def model_details() -> dict:
    out = {}
    for table in Base.metadata.sorted_tables:
        checks = sorted(c.name for c in table.constraints if isinstance(c, CheckConstraint) and c.name)
        fks = sorted(
            (
                tuple(e.parent.name for e in fk.elements),
                fk.elements[0].column.table.name,
                (fk.ondelete or "").upper() or None,
            )
            for fk in table.foreign_key_constraints
        )
        out[table.name] = (checks, fks)
    return out


def leftovers() -> list[str]:
    """Objects other than tables that a downgrade to base must also remove (PostgreSQL)."""
    if db.engine.dialect.name != "postgresql":
        return []
    with db.engine.connect() as conn:
        types = (
            conn.execute(
                text(
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')"
                )
            )
            .scalars()
            .all()
        )
        seqs = (
            conn.execute(
                text("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'")
            )
            .scalars()
            .all()
        )
    return sorted(types) + sorted(seqs)


# --- the chain itself -------------------------------------------------------------------------------------------------


def test_one_linear_chain_with_one_head(mig_app):
    sd = script()
    assert len(sd.get_heads()) == 1
    assert len(sd.get_bases()) == 1
    chain = revision_chain()
    assert chain[0] == sd.get_bases()[0] and chain[-1] == sd.get_current_head()
    for rev in chain:
        r = sd.get_revision(rev)
        assert not r.is_merge_point and not r.is_branch_point, rev
        assert r.module.downgrade.__code__.co_code != (lambda: None).__code__.co_code, f"{rev} has no downgrade"
    assert len(chain) >= 6


# --- an empty database to head ----------------------------------------------------------------------------------------


def test_upgrade_from_empty_matches_the_models(mig_app):
    assert tables() == set()
    assert current_revision() is None
    upgrade()
    assert current_revision() == script().get_current_head()
    assert tables() == APP_TABLES | {"alembic_version"}
    assert schema_diff() == []
    assert reflected_details() == model_details()


def test_downgrade_to_base_and_upgrade_again(mig_app):
    upgrade()
    downgrade(revision="base")
    assert current_revision() is None
    assert tables() <= {"alembic_version"}
    assert leftovers() == []
    upgrade()
    assert current_revision() == script().get_current_head()
    assert schema_diff() == []
    assert reflected_details() == model_details()
    # the rebuilt schema works
    db.session.add(
        User(email="after.rebuild@example.com", name="R", role=Role.ADVOCATE, status=Status.ACTIVE, password_hash="x")
    )
    db.session.commit()
    assert db.session.scalar(select(User.email)) == "after.rebuild@example.com"


def test_every_step_goes_down_and_up(mig_app):
    chain = revision_chain()
    for rev in chain:
        upgrade(revision=rev)
        assert current_revision() == rev
        downgrade(revision="-1")
        previous = chain[chain.index(rev) - 1] if chain.index(rev) else None
        assert current_revision() == previous, rev
        upgrade(revision="+1")
        assert current_revision() == rev
    assert schema_diff() == []


def test_stepping_down_and_up_keeps_existing_rows(mig_app):
    upgrade()
    user = User(email="kept@example.com", name="Kept", role=Role.ADVOCATE, status=Status.ACTIVE, password_hash="x")
    db.session.add(user)
    db.session.flush()
    db.session.add(
        OutboxMessage(
            recipient="kept@example.com",
            subject="s",
            body_text="t",
            body_html="h",
            template="approved",
            user_id=user.id,
        )
    )
    db.session.commit()
    db.session.remove()
    chain = revision_chain()
    downgrade(revision=chain[3])  # back before the search queue and the availability indexes
    upgrade()
    assert schema_diff() == []
    assert db.session.scalar(select(User.email)) == "kept@example.com"
    assert db.session.scalar(select(OutboxMessage.recipient)) == "kept@example.com"


def test_0008_erases_or_links_the_admin_mail_written_before_it(mig_app):
    """Admin notifications about applicants written before 0008: sent ones are blanked, unsent ones are
    linked to the applicant they name (so that person's erasure takes them)."""
    upgrade(revision="0007")
    now = "2026-12-01 10:00:00"
    with db.engine.begin() as conn:
        for uid, name in ((1, "Alex Admin"), (2, "Paula Applicant"), (3, "Quinn Applicant")):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, name, role, status, session_token, failed_login_count, created_at, "
                    "updated_at) VALUES (:id, :email, :name, :role, 'pending_approval', :tok, 0, :now, :now)"
                ),
                {
                    "id": uid,
                    "email": f"u{uid}@example.com",
                    "name": name,
                    "tok": f"t{uid}",
                    "now": now,
                    "role": "admin" if uid == 1 else "advocate",
                },
            )
        for mid, status, template, body in (
            (1, "sent", "admin_pending", "Paula Applicant (CTO, Initech) confirmed"),
            (2, "queued", "admin_pending", "Quinn Applicant (no title, X) confirmed"),
            (3, "sent", "approved", "Hello Paula Applicant"),
        ):
            conn.execute(
                text(
                    "INSERT INTO outbox_messages (id, recipient, subject, body_text, body_html, template, user_id, "
                    "status, attempts, next_attempt_at, created_at) "
                    "VALUES (:id, 'u1@example.com', 'subject', :body, :body, :template, 1, :status, 0, :now, :now)"
                ),
                {"id": mid, "body": body, "template": template, "status": status, "now": now},
            )
    upgrade()
    with db.engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(text("SELECT id, subject, body_text, body_html, about_user_id FROM outbox_messages"))
        }
    assert (rows[1].subject, rows[1].body_text, rows[1].body_html) == ("(erased)", "", "")
    assert rows[2].about_user_id == 3 and rows[2].body_text.startswith("Quinn")  # still to be sent
    assert rows[3].body_text == "Hello Paula Applicant" and rows[3].about_user_id is None  # other mail untouched
    assert schema_diff() == []


def test_offline_sql_can_be_generated(mig_app, capsys):
    """`flask db upgrade --sql` renders the whole chain without a database connection."""
    upgrade(sql=True)
    out = capsys.readouterr().out
    for table in ("users", "outbox_messages", "opportunities", "points_entries"):
        assert f"CREATE TABLE {table}" in out or f'CREATE TABLE "{table}"' in out, table
    assert tables() == set()  # nothing was applied


# --- the database the tests use was built by these migrations ---------------------------------------------------------


def test_shared_test_database_is_at_head_and_matches(app):
    assert current_revision() == script().get_current_head()
    assert schema_diff() == []
