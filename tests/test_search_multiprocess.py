"""Several processes writing to the index at once lose nothing, also while a rebuild swaps it.

Each worker process builds the app from the test's own config (same database, same index folder)
and, 25 times, saves a distinct advocate's story with a new token through the profile service in its
own app context, as a request or a job would; the app's teardown hook writes the index.
"""

from __future__ import annotations

import multiprocessing
import traceback

import pytest

from portal.extensions import db
from portal.models import AdvocateProfile, SearchPending
from search import querying
from tests.support import advocate_profile, find, names

PROCESSES, UPDATES = 4, 25


def token(proc: int, i: int) -> str:
    return f"proc{proc}upd{i}tok"


def _worker(config: dict, user_id: int, proc: int, queue) -> None:
    """Runs in a spawned process: 25 saves of one advocate's story, each its own unit of work."""
    try:
        import search.indexing as indexing
        from portal import create_app
        from portal.database import begin_write
        from portal.extensions import db as pdb
        from portal.models import User
        from portal.services import profiles

        failures = []
        note = indexing._note_failure

        def noting(engine, exc):  # the teardown hook swallows index failures: count them here
            failures.append(f"{type(exc).__name__}: {exc}")
            note(engine, exc)

        indexing._note_failure = noting
        app = create_app(config)
        for i in range(UPDATES):
            with app.app_context():  # its teardown applies the queued change to the index
                begin_write(pdb.session)  # read-then-write, as a POST does (SQLite: BEGIN IMMEDIATE)
                user = pdb.session.get(User, user_id)
                story = profiles.get_profile(pdb.session, user).story
                profiles.update_profile(
                    pdb.session,
                    user,
                    profiles.ProfileInput(
                        name=user.name,
                        job_title=user.job_title or "",
                        company=user.company or "",
                        story=f"{story} {token(proc, i)}",
                    ),
                )
                pdb.session.commit()
        with app.app_context():
            indexing.wait_for_merges()
            pdb.engine.dispose()
        queue.put(("ok", proc, failures))
    except BaseException:
        queue.put(("error", proc, traceback.format_exc()))


def _run_workers(app_config: dict, user_ids: list[int], while_running=None) -> list:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(app_config, uid, k, queue)) for k, uid in enumerate(user_ids)]
    for p in procs:
        p.start()
    try:
        if while_running:
            while_running(procs)
        outcomes = [queue.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    errors = [o[2] for o in outcomes if o[0] != "ok"]
    assert not errors, "a worker failed:\n" + "\n".join(errors)  # the whole traceback, not a truncated repr
    return sorted(outcomes, key=lambda o: o[1])


def _assert_nothing_lost(people, runner) -> None:
    db.session.rollback()
    assert db.session.query(SearchPending).count() == 0  # nothing left waiting
    for k, user in enumerate(people):
        story = db.session.get(AdvocateProfile, user.id).story
        assert all(token(k, i) in story for i in range(UPDATES))  # the database has every save
    missing = [
        token(k, i) for k in range(PROCESSES) for i in range(UPDATES) if names(find(token(k, i))) != [people[k].name]
    ]
    if missing:  # say what the index holds for them: stale, missing or duplicated (a rare failure in CI)
        querying.forget_searchers()
        again = [t for t in missing if names(find(t)) != [people[int(t[4])].name]]
        held = {t: [(h.user.id, h.user.name) for h in find(t, include_unavailable=True).hits] for t in missing[:5]}
        searcher = querying.searcher_for("advocates").searcher
        docs = {u.id: len(list(searcher.documents(uid=str(u.id)))) for u in people}  # 1 each, or duplicated
        raise AssertionError(
            f"{len(missing)} of {PROCESSES * UPDATES} updates not findable: {missing[:10]}; with a fresh searcher "
            f"still missing: {again}; hits: {held}; documents per advocate: {docs}"
        )
    assert find("start").total == PROCESSES
    assert querying.searcher_for("advocates").searcher.doc_count() == PROCESSES  # no duplicates
    check = runner.invoke(args=["search", "check"])
    assert check.exit_code == 0, check.output


@pytest.fixture
def people(app, make_user):
    """The workers' advocates, committed (and indexed) before any worker starts."""
    return [
        advocate_profile(make_user, f"worker{k}@example.com", story="start", name=f"Worker {k}")
        for k in range(PROCESSES)
    ]


def test_four_processes_writing_25_updates_each_lose_none(app, app_config, people, runner):
    outcomes = _run_workers(app_config, [u.id for u in people])
    assert [o[0] for o in outcomes] == ["ok"] * PROCESSES, outcomes
    assert [o[2] for o in outcomes] == [[]] * PROCESSES  # no index write failed, none was left for later
    _assert_nothing_lost(people, runner)


def test_four_processes_writing_while_the_index_is_rebuilt_lose_none(app, app_config, people, runner):
    import time

    swaps = []

    def reindex_meanwhile(procs):
        import os

        from search.indexing import current_dir

        deadline = time.monotonic() + 120
        while len(swaps) < 3 and any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            db.session.rollback()
            if "upd" not in db.session.get(AdvocateProfile, people[0].id).story and len(swaps) == 0:
                time.sleep(0.05)  # wait until the workers are writing
                continue
            result = runner.invoke(args=["search", "reindex", "--procs", "1"])
            assert result.exit_code == 0, result.output
            swaps.append(os.readlink(current_dir()))

    outcomes = _run_workers(app_config, [u.id for u in people], while_running=reindex_meanwhile)
    assert [o[0] for o in outcomes] == ["ok"] * PROCESSES, outcomes
    assert len(swaps) >= 1 and len(set(swaps)) == len(swaps)
    # Writes that met a swap may have been left to the next writer; the next sync finishes them.
    result = runner.invoke(args=["search", "sync", "--no-refresh-fatigue"])
    assert result.exit_code == 0, result.output
    _assert_nothing_lost(people, runner)
