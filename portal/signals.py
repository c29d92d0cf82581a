"""Signals: what a service announces, for other parts to act on without being imported by it.

This module imports nothing from the services, so the service that sends and the one that listens do not
depend on each other (DESIGN.md: "Side effects announced, not imported"). Receivers are connected in one
place, the app factory's ``register_signals``, once per process (connecting a receiver again changes
nothing). Code that runs services needs an app anyway (the database session, config, the email templates);
an app made by ``create_app`` has its receivers connected.

Receivers run synchronously, inside the sender's transaction: they get the caller's ``session``, flush
and never commit, so a rolled-back change takes what followed it along (badges, queued emails).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

points_awarded = _signals.signal(
    "points-awarded",
    doc="""Sent by ``points.award`` once it has written a new ledger entry: points earned, or an admin's
    adjustment (either sign). Never for an idempotency key already used: the same credit twice is announced
    once. Keyword arguments: ``session`` (the caller's), ``user_id``, ``entry`` (the new PointsEntry).
    Listened to by ``badges`` (connected by ``badges.connect``): the badges now due, and their email.""",
)

advocates_changed = _signals.signal(
    "advocates-changed",
    doc="""Sent by a bulk change that no row of a followed model shows (core SQL, or a list item's name that
    documents copy): a tag renamed or merged, a list item renamed, a country moved to another region. Keyword
    arguments: ``session`` (the caller's), ``user_ids`` (a SELECT of the advocates' ids, not run yet).
    Listened to by ``search`` (connected by ``search.seam.init_app``): queues those advocates' documents
    for re-indexing in the caller's transaction, with one INSERT ... SELECT.""",
)

invitation_accepted = _signals.signal(
    "invitation-accepted",
    doc="""Sent by ``invitations.accept`` once the invited person's account exists. Keyword arguments:
    ``session`` (the caller's), ``invitation`` (the Invitation, now accepted), ``user`` (the new User).
    Listened to by ``nominations`` (connected by ``nominations.connect``): the nomination it came from
    counts as joined, and its nominator is emailed.""",
)

participation_withdrawn = _signals.signal(
    "participation-withdrawn",
    doc="""Sent by ``participation.withdraw`` once an advocate withdrew (their seat, if any, given back).
    Keyword arguments: ``session`` (the caller's), ``participation`` (the Participation, now withdrawn).
    Listened to by ``references`` (connected by ``references.connect``): a reference request's status
    follows its asks, and its requester is told.""",
)
