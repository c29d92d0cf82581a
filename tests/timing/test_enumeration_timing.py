"""Timing tells nothing about who has an account (issue 11, part 2), measured the way an attacker would.

The app runs on a real WSGI server with production's mail delivery. 200 password-reset requests for an
address with an account and 200 for addresses without one, in random interleaved order, each followed by
a request for the page it redirects to on the same server (before the outbox worker, that request waited
while the web worker sent the reset email). A permutation test on the difference of medians, for the POST
and for the request after it, fails the test at p < 0.01. Two comparisons at 1 % would fail one clean run
in fifty by chance, so a difference must show twice: when one is found, all 400 pairs are measured again
and the test fails if the new sample shows it too (a real leak, like the 2-5x one before the worker,
shows every time). The same for registration with a taken and a new address.

Slow (a few seconds per backend), so not in `make test`: `make test-timing` (CI runs it).
"""

from __future__ import annotations

import itertools
import random
import statistics
import time

import pytest
import requests

from portal.config import AUTH_TIMING_FLOOR
from tests.support import LiveServer, csrf_from

pytestmark = pytest.mark.timing

N = 200
ALPHA = 0.01
PERMUTATIONS = 4000
_fresh = itertools.count()  # addresses never used before, across measurements


def permutation_p(a: list[float], b: list[float], rng: random.Random) -> float:
    """Two-sided p-value of the difference of medians under random relabelling."""
    observed = abs(statistics.median(a) - statistics.median(b))
    pooled, n = a + b, len(a)
    hits = 0
    for _ in range(PERMUTATIONS):
        rng.shuffle(pooled)
        if abs(statistics.median(pooled[:n]) - statistics.median(pooled[n:])) >= observed:
            hits += 1
    return (hits + 1) / (PERMUTATIONS + 1)


@pytest.fixture
def production_delivery(app_config):
    """Mail as in production: the worker's delivery on this branch; the after-response sender on older code."""
    app_config.update(
        OUTBOX_DELIVERY="worker", OUTBOX_SEND_AFTER_RESPONSE=True, AUTH_TIMING_FLOOR_SECONDS=AUTH_TIMING_FLOOR
    )
    return app_config


@pytest.fixture
def live(production_delivery, app):
    server = LiveServer(app)
    yield server
    server.stop()


def measure(live, make_data, post_path: str, form_page: str, known: str) -> dict:
    """Times of each POST and of the request that follows it, for the known and the unknown address."""
    rng = random.Random(11)
    labels = ["known"] * N + ["unknown"] * N
    rng.shuffle(labels)
    times = {label: {"post": [], "next": []} for label in ("known", "unknown")}
    with requests.Session() as browser:
        token = csrf_from(browser.get(live.url + form_page, timeout=10).text)
        for i in range(10):  # warm up both paths (templates, connections)
            email = known if i % 2 else f"warm{next(_fresh)}@example.com"
            browser.post(live.url + post_path, data=make_data(token, email), timeout=10)
        for label in labels:
            email = known if label == "known" else f"nobody{next(_fresh)}@example.com"
            start = time.perf_counter()
            resp = browser.post(live.url + post_path, data=make_data(token, email), allow_redirects=False, timeout=10)
            posted = time.perf_counter()
            assert resp.status_code == 302, resp.text[:500]
            follow = browser.get(live.url + resp.headers["Location"], timeout=10)
            done = time.perf_counter()
            assert follow.status_code == 200
            times[label]["post"].append(posted - start)
            times[label]["next"].append(done - posted)
    return times


def differences(times: dict, seed: int) -> tuple[list[str], list[str]]:
    """Per measure (the POST, the request after it): a report line each, and those with p < ALPHA."""
    rng = random.Random(seed)
    report, leaks = [], []
    for which in ("post", "next"):
        known, unknown = times["known"][which], times["unknown"][which]
        p = permutation_p(known, unknown, rng)
        line = (
            f"{which}: median known {statistics.median(known) * 1000:.2f} ms, "
            f"unknown {statistics.median(unknown) * 1000:.2f} ms, p = {p:.4f}"
        )
        report.append(line)
        if p < ALPHA:
            leaks.append(which)
    return report, leaks


def assert_indistinguishable(measure_once) -> None:
    report, leaks = differences(measure_once(), seed=7)
    print("\n".join(report))
    if leaks:  # seen once: measure again, and fail if it shows again
        again, leaks_again = differences(measure_once(), seed=8)
        print("again:\n" + "\n".join(again))
        assert not leaks_again, "timing tells known from unknown addresses:\n" + "\n".join(report + ["again:", *again])


def test_password_reset_timing_does_not_tell_who_has_an_account(live, advocate):
    def data(token, email):
        return {"csrf_token": token, "email": email}

    assert_indistinguishable(
        lambda: measure(live, data, "/auth/forgot-password", "/auth/forgot-password", advocate.email)
    )


def test_registration_timing_does_not_tell_who_has_an_account(live, advocate):
    def data(token, email):
        return {
            "csrf_token": token,
            "name": "Tim Timing",
            "email": email,
            "company": "Initech",
            "job_title": "CIO",
            "password": "purple-otter-skates-42",
            "confirm": "purple-otter-skates-42",
            "accept_terms": "y",
        }

    assert_indistinguishable(lambda: measure(live, data, "/auth/register", "/auth/register", advocate.email))
