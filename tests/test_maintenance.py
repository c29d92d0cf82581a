"""`flask maintenance analyze`: the planner's statistics, which SQLite keeps only once asked (the report and
coverage pages choose their indexes by them at 50,000 advocates; bench/RESULTS.md)."""

from __future__ import annotations

from sqlalchemy import text

from portal.extensions import db


def test_analyze_refreshes_the_planner_statistics(app, runner, make_user):
    make_user()
    result = runner.invoke(args=["maintenance", "analyze"])
    assert result.exit_code == 0 and "Planner statistics refreshed" in result.output, result.output
    if db.engine.dialect.name == "sqlite":
        stats = db.session.execute(text("SELECT tbl, idx FROM sqlite_stat1 WHERE tbl = 'users'")).all()
        assert any(idx == "ix_users_role_status" for _, idx in stats), stats
    db.session.rollback()
