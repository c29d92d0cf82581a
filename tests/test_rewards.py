"""Rewards catalog and redemptions through the pages: stock and points in one transaction, refusals
as messages, per-advocate limits, double submits, the order life cycle with its emails, the admin
catalog's validation, and escaping."""

import re
from html import unescape

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import EntryKind, OutboxMessage, Redemption, RedemptionStatus, Reward, User
from portal.services import points, rewards
from portal.services.errors import DomainError
from tests.support import (
    assert_ledger_consistent,
    audits,
    cached,
    csrf_from,
    entries,
    give,
    make_reward,
    page_text,
    post_form,
    redeem,
    reload,
)


def flashes(client, url: str = "/rewards") -> str:
    """The page where the redirect lands, unescaped (flash messages are shown once)."""
    return page_text(client.get(url))


def hidden_value(html: str, name: str) -> str:
    m = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert m, f"no {name} field on the page"
    value = re.search(r'value="([^"]*)"', m.group(0))
    return unescape(value.group(1)) if value else ""


def reward_edit_form(client, reward_id: int) -> dict:
    """The edit form as the browser has it when opened: CSRF token and the stock it was drawn with."""
    html = client.get(f"/admin/rewards/{reward_id}").get_data(as_text=True)
    return {"csrf_token": csrf_from(html), "stock_seen": hidden_value(html, "stock_seen")}


def edit_reward(client, reward_id: int, data: dict, opened: dict | None = None):
    """POST the reward edit form; ``opened`` is a form opened earlier (reward_edit_form), else it is opened now."""
    return client.post(f"/admin/rewards/{reward_id}", data={**(opened or reward_edit_form(client, reward_id)), **data})


def _redemptions(user_id=None):
    db.session.rollback()
    q = select(Redemption).order_by(Redemption.id)
    if user_id is not None:
        q = q.where(Redemption.user_id == user_id)
    return list(db.session.scalars(q))


def _stock(reward_id):
    return reload(Reward, reward_id).stock


def _mail_subjects(mailbox, address):
    return [m.subject for m in mailbox.to(address)]


# --- redeeming --------------------------------------------------------------------------------------------------


def test_redeem_debits_and_takes_stock(app, advocate_client, advocate, mailbox):
    give(advocate.id, 500)
    rid = make_reward(cost=200, stock=3, name="Hoodie")
    resp = redeem(advocate_client, rid, "order-hoodie-1")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/me/redemptions")
    (order,) = _redemptions(advocate.id)
    assert (order.reward_id, order.points_cost, order.status) == (rid, 200, RedemptionStatus.REQUESTED)
    assert _stock(rid) == 2
    (debit,) = entries(advocate.id, kind=EntryKind.REDEEMED)
    assert (debit.amount, debit.source_id) == (-200, order.id)
    assert cached(advocate.id) == (300, 500)
    page = page_text(advocate_client.get("/me/redemptions"))
    assert "Your order for Hoodie is in" in page and "Requested" in page
    mail = mailbox.last(advocate.email, subject="We received your order")
    assert "Hoodie" in mail.subject
    assert_ledger_consistent(advocate.id)


def test_stock_and_points_are_one_transaction(app, advocate_client, advocate, monkeypatch, mailbox):
    """If the debit fails after the stock was taken, the stock is not lost and no order exists."""
    give(advocate.id, 500)
    rid = make_reward(cost=200, stock=1, name="Last hoodie")

    def debit_fails(*args, **kwargs):
        raise points.InsufficientPoints("The ledger refused the debit.")

    monkeypatch.setattr(points, "debit_for_redemption", debit_fails)
    resp = redeem(advocate_client, rid, "order-fails-1")
    assert resp.status_code == 303
    assert "The ledger refused the debit." in flashes(advocate_client)
    assert _stock(rid) == 1
    assert _redemptions() == [] and cached(advocate.id) == (500, 500)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert _mail_subjects(mailbox, advocate.email) == []


def test_unlimited_stock_stays_unlimited(app, advocate_client, advocate):
    give(advocate.id, 500)
    rid = make_reward(cost=100, stock=None)
    for i in range(3):
        assert redeem(advocate_client, rid, f"order-unl-{i}").status_code == 302
    assert _stock(rid) is None and len(_redemptions(advocate.id)) == 3 and cached(advocate.id) == (200, 500)


@pytest.mark.parametrize("case", ["out_of_stock", "insufficient", "inactive", "missing"])
def test_refusals_are_flash_messages_on_the_catalog(app, advocate_client, advocate, mailbox, case):
    give(advocate.id, 100)
    if case == "out_of_stock":
        rid, message = make_reward(cost=10, stock=0, name="Sticker"), "Sticker is out of stock."
    elif case == "insufficient":
        rid, message = make_reward(cost=1500, name="Event pass"), "Event pass costs 1,500 points; you have 100."
    elif case == "inactive":
        rid, message = make_reward(cost=10, active=False, name="Retired mug"), "That reward is not available."
    else:
        rid, message = 424242, "That reward is not available."
    resp = redeem(advocate_client, rid, f"order-refused-{case}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/rewards")
    page = flashes(advocate_client)
    assert message in page
    assert _redemptions() == [] and cached(advocate.id) == (100, 100)
    if case == "out_of_stock":
        assert _stock(rid) == 0
    assert _mail_subjects(mailbox, advocate.email) == []


def test_catalog_hides_inactive_and_marks_what_cannot_be_bought(app, advocate_client, advocate):
    give(advocate.id, 100)
    make_reward(cost=10, active=False, name="Retired mug")
    make_reward(cost=10, stock=0, name="Sticker")
    make_reward(cost=250, name="Gift card")
    page = page_text(advocate_client.get("/rewards"))
    assert "Retired mug" not in page
    assert "Out of stock" in page and "150 more points needed" in page
    assert "You have 100 points to spend" in re.sub(r"<[^>]+>", "", page)


def test_per_advocate_limit(app, advocate_client, advocate, make_user):
    give(advocate.id, 1000)
    rid = make_reward(cost=100, limit=2, name="Conference ticket")
    assert redeem(advocate_client, rid, "order-limit-1").status_code == 302
    assert redeem(advocate_client, rid, "order-limit-2").status_code == 302
    third = redeem(advocate_client, rid, "order-limit-3")
    assert third.status_code == 303
    assert "You have already redeemed Conference ticket as many times as allowed." in flashes(advocate_client)
    assert len(_redemptions(advocate.id)) == 2 and cached(advocate.id) == (800, 1000)
    # Another advocate has their own allowance.
    other = make_user()
    give(other.id, 500)
    rewards.redeem(db.session, reload(User, other.id), rid, "other-1")
    db.session.commit()
    # A cancelled order gives the allowance back.
    first = _redemptions(advocate.id)[0]
    assert (
        post_form(advocate_client, f"/me/redemptions/{first.id}/cancel", {}, page="/me/redemptions").status_code == 302
    )
    assert redeem(advocate_client, rid, "order-limit-4").status_code == 302
    assert len([r for r in _redemptions(advocate.id) if r.status == RedemptionStatus.REQUESTED]) == 2
    assert_ledger_consistent(advocate.id, other.id)


def test_double_submitted_form_orders_once(app, advocate_client, advocate, mailbox):
    give(advocate.id, 500)
    rid = make_reward(cost=100, stock=5)
    for _ in range(3):
        assert redeem(advocate_client, rid, "same-form-key-1").status_code == 302
    assert len(_redemptions(advocate.id)) == 1
    assert _stock(rid) == 4 and cached(advocate.id) == (400, 500)
    assert len(entries(advocate.id, kind=EntryKind.REDEEMED)) == 1
    mailbox.wait_for(advocate.email, subject="We received your order")
    assert len([s for s in _mail_subjects(mailbox, advocate.email) if "We received your order" in s]) == 1
    # A fresh form is a new order.
    assert redeem(advocate_client, rid, "same-form-key-2").status_code == 302
    assert len(_redemptions(advocate.id)) == 2


def test_catalog_form_keys_differ_per_render(app, advocate_client, advocate):
    give(advocate.id, 500)
    rid = make_reward(cost=100)
    keys = {
        re.search(
            rf'name="idempotency_key" value="([^"]+-{rid})"', advocate_client.get("/rewards").get_data(as_text=True)
        ).group(1)
        for _ in range(2)
    }
    assert len(keys) == 2


def test_only_active_advocates_redeem(app, staff_client, staff, advocate):
    rid = make_reward(cost=10)
    assert staff_client.get("/rewards").status_code == 403
    give(staff.id, 100)
    with pytest.raises(DomainError):
        rewards.redeem(db.session, reload(User, staff.id), rid, "staff-1")
    db.session.rollback()
    assert _redemptions() == []


# --- the order life cycle ------------------------------------------------------------------------------------------


def test_admin_fulfils_an_order(app, advocate_client, advocate, admin_client, admin, mailbox):
    give(advocate.id, 500)
    rid = make_reward(cost=200, stock=2, name="Hoodie")
    redeem(advocate_client, rid, "order-fulfil-1")
    (order,) = _redemptions()
    assert "Hoodie" in page_text(admin_client.get("/admin/redemptions"))
    resp = post_form(
        admin_client, f"/admin/redemptions/{order.id}/fulfil", {"note": "DHL 123456"}, page="/admin/redemptions"
    )
    assert resp.status_code == 302
    assert "Marked fulfilled" in flashes(admin_client, "/admin/redemptions")
    order = reload(Redemption, order.id)
    assert (order.status, order.handled_by_id, order.note) == (RedemptionStatus.FULFILLED, admin.id, "DHL 123456")
    assert order.fulfilled_at is not None
    mail = mailbox.last(advocate.email, subject="On its way")
    assert "Hoodie" in mail.subject and "DHL 123456" in mail.text
    assert len(audits("redemption.fulfil")) == 1
    assert cached(advocate.id) == (300, 500) and _stock(rid) == 1  # fulfilling moves no points or stock
    page = page_text(advocate_client.get("/me/redemptions"))
    assert "Fulfilled" in page and "DHL 123456" in page and "Cancel order" not in page
    assert "Hoodie" in page_text(admin_client.get("/admin/redemptions?status=fulfilled"))

    # Neither fulfilled twice nor cancelled afterwards.
    post_form(admin_client, f"/admin/redemptions/{order.id}/fulfil", {}, page="/admin/redemptions")
    assert "This order is already fulfilled." in flashes(admin_client, "/admin/redemptions")
    post_form(admin_client, f"/admin/redemptions/{order.id}/cancel", {}, page="/admin/redemptions")
    assert "This order is already fulfilled." in flashes(admin_client, "/admin/redemptions")
    post_form(advocate_client, f"/me/redemptions/{order.id}/cancel", {}, page="/me/redemptions")
    assert "This order is already fulfilled." in flashes(advocate_client, "/me/redemptions")
    assert reload(Redemption, order.id).status == RedemptionStatus.FULFILLED
    assert cached(advocate.id) == (300, 500) and _stock(rid) == 1
    assert len([m for m in mailbox.to(advocate.email) if "On its way" in m.subject]) == 1
    assert not [m for m in mailbox.to(advocate.email) if "Order cancelled" in m.subject]
    assert_ledger_consistent(advocate.id)


def test_admin_cancels_an_order_and_refunds_once(app, advocate_client, advocate, admin_client, admin, mailbox):
    give(advocate.id, 500)
    rid = make_reward(cost=200, stock=2, name="Backpack")
    redeem(advocate_client, rid, "order-admincancel-1")
    (order,) = _redemptions()
    assert _stock(rid) == 1
    resp = post_form(
        admin_client, f"/admin/redemptions/{order.id}/cancel", {"reason": "Discontinued"}, page="/admin/redemptions"
    )
    assert resp.status_code == 302
    order = reload(Redemption, order.id)
    assert (order.status, order.handled_by_id, order.note) == (RedemptionStatus.CANCELLED, admin.id, "Discontinued")
    assert order.cancelled_at is not None
    assert cached(advocate.id) == (500, 500) and _stock(rid) == 2
    (refund,) = entries(advocate.id, kind=EntryKind.REVERSED)
    assert refund.amount == 200 and refund.counts_toward_lifetime is False and refund.actor_id == admin.id
    mail = mailbox.last(advocate.email, subject="Order cancelled")
    assert "Backpack" in mail.subject and "Discontinued" in mail.text
    (event,) = audits("redemption.cancel")
    assert event.actor_id == admin.id and event.target_id == order.id

    post_form(admin_client, f"/admin/redemptions/{order.id}/cancel", {}, page="/admin/redemptions")
    assert "This order is already cancelled." in flashes(admin_client, "/admin/redemptions")
    assert cached(advocate.id) == (500, 500) and _stock(rid) == 2
    assert len(entries(advocate.id, kind=EntryKind.REVERSED)) == 1
    assert len([m for m in mailbox.to(advocate.email) if "Order cancelled" in m.subject]) == 1
    assert "Cancelled" in page_text(advocate_client.get("/me/redemptions"))
    assert_ledger_consistent(advocate.id)


def test_advocate_cancels_own_requested_order(app, advocate_client, advocate, mailbox):
    give(advocate.id, 300)
    rid = make_reward(cost=200, stock=2, name="Water bottle")
    redeem(advocate_client, rid, "order-selfcancel-1")
    (order,) = _redemptions()
    assert "Cancel order" in page_text(advocate_client.get("/me/redemptions"))
    resp = post_form(advocate_client, f"/me/redemptions/{order.id}/cancel", {}, page="/me/redemptions")
    assert resp.status_code == 302
    assert "Your order is cancelled" in flashes(advocate_client, "/me/redemptions")
    order = reload(Redemption, order.id)
    assert order.status == RedemptionStatus.CANCELLED and order.handled_by_id == advocate.id
    assert cached(advocate.id) == (300, 300) and _stock(rid) == 2
    assert mailbox.last(advocate.email, subject="Order cancelled")
    assert audits("redemption.cancel") == []  # advocates' own cancellations are not admin actions
    post_form(advocate_client, f"/me/redemptions/{order.id}/cancel", {}, page="/me/redemptions")
    assert "This order is already cancelled." in flashes(advocate_client, "/me/redemptions")
    assert cached(advocate.id) == (300, 300) and _stock(rid) == 2
    assert_ledger_consistent(advocate.id)


def test_refund_is_what_was_paid_even_if_the_price_changed(app, advocate_client, advocate, admin_client):
    give(advocate.id, 500)
    rid = make_reward(cost=200, name="Jacket")
    redeem(advocate_client, rid, "order-price-1")
    (order,) = _redemptions()
    assert edit_reward(admin_client, rid, {"name": "Jacket", "points_cost": "350", "active": "y"}).status_code == 302
    post_form(advocate_client, f"/me/redemptions/{order.id}/cancel", {}, page="/me/redemptions")
    assert cached(advocate.id) == (500, 500)
    assert_ledger_consistent(advocate.id)


def test_advocate_cannot_cancel_someone_elses_order(app, advocate_client, advocate, make_user, mailbox):
    other = make_user(email="other.advocate@example.com")
    give(other.id, 300)
    rid = make_reward(cost=100, stock=5)
    order, _ = rewards.redeem(db.session, reload(User, other.id), rid, "theirs-1")
    db.session.commit()
    order_id = order.id
    resp = post_form(advocate_client, f"/me/redemptions/{order_id}/cancel", {}, page="/me/redemptions")
    assert resp.status_code == 404
    assert reload(Redemption, order_id).status == RedemptionStatus.REQUESTED
    assert cached(other.id) == (200, 300) and _stock(rid) == 4
    assert not [m for m in mailbox.to(other.email) if "Order cancelled" in m.subject]
    # and does not see it in their history
    assert "theirs" not in page_text(advocate_client.get("/me/redemptions"))
    assert len(_redemptions(other.id)) == 1
    assert post_form(advocate_client, "/me/redemptions/999999/cancel", {}, page="/me/redemptions").status_code == 404


def test_history_lists_own_orders_newest_first(app, advocate_client, advocate, make_user):
    give(advocate.id, 1000)
    a = make_reward(cost=100, name="Alpha socks")
    b = make_reward(cost=100, name="Beta cap")
    other = make_user()
    give(other.id, 1000)
    c = make_reward(cost=100, name="Gamma scarf")
    rewards.redeem(db.session, reload(User, other.id), c, "o-1")
    db.session.commit()
    assert "No orders yet" in page_text(advocate_client.get("/me/redemptions"))
    redeem(advocate_client, a, "hist-00001")
    redeem(advocate_client, b, "hist-00002")
    page = page_text(advocate_client.get("/me/redemptions"))
    assert page.index("Beta cap") < page.index("Alpha socks")
    assert "Gamma scarf" not in page
    assert page.count("Requested") == 2


# --- the admin catalog -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("points_cost", "0", "Number must be between 1 and 1000000"),
        ("points_cost", "-5", "Number must be between 1 and 1000000"),
        ("points_cost", "", "This field is required"),
        ("stock", "-1", "Number must be between 0 and 1000000"),
        ("per_advocate_limit", "0", "Number must be between 1 and 1000"),
        ("name", "", "This field is required"),
    ],
)
def test_admin_reward_form_rejects_invalid_input(app, admin_client, field, value, message):
    data = {
        "name": "Gift card",
        "description": "",
        "points_cost": "100",
        "stock": "",
        "per_advocate_limit": "",
        "active": "y",
        field: value,
    }
    resp = post_form(admin_client, "/admin/rewards/new", data)
    assert resp.status_code == 422
    assert message in page_text(resp)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Reward)) == 0

    rid = make_reward(cost=300, stock=4, name="Original")
    resp = edit_reward(admin_client, rid, data)
    assert resp.status_code == 422 and message in page_text(resp)
    r = reload(Reward, rid)
    assert (r.name, r.points_cost, r.stock) == ("Original", 300, 4)


def test_reward_service_validates_too(app, admin):
    for bad in (dict(points_cost=0), dict(stock=-1), dict(per_advocate_limit=0), dict(name="  ")):
        data = rewards.RewardInput(
            **{"name": "Cap", "description": "", "points_cost": 10, "stock": None, "per_advocate_limit": None, **bad}
        )
        with pytest.raises(DomainError):
            rewards.create_reward(db.session, data, admin.id)
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Reward)) == 0


def test_admin_creates_and_edits_a_reward(app, admin_client, admin, advocate_client, advocate):
    resp = post_form(
        admin_client,
        "/admin/rewards/new",
        {
            "name": "Donation to charity",
            "description": "We give $10",
            "points_cost": "250",
            "stock": "10",
            "per_advocate_limit": "1",
            "active": "y",
        },
    )
    assert resp.status_code == 302
    db.session.rollback()
    r = db.session.scalar(select(Reward))
    assert (r.name, r.points_cost, r.stock, r.per_advocate_limit, r.active) == ("Donation to charity", 250, 10, 1, True)
    assert "Donation to charity" in page_text(advocate_client.get("/rewards"))
    # Edit: unlimited stock, no limit, and switched off (inactive: not in the catalog).
    resp = edit_reward(
        admin_client,
        r.id,
        {"name": "Donation", "description": "", "points_cost": "300", "stock": "", "per_advocate_limit": ""},
    )
    assert resp.status_code == 302
    r = reload(Reward, r.id)
    assert (r.name, r.points_cost, r.stock, r.per_advocate_limit, r.active) == ("Donation", 300, None, None, False)
    assert "Donation" not in page_text(advocate_client.get("/rewards"))
    assert "Donation" in page_text(admin_client.get("/admin/rewards"))
    assert {e.action for e in audits("reward.create") + audits("reward.update")} == {"reward.create", "reward.update"}
    give(advocate.id, 1000)
    assert redeem(advocate_client, r.id, "order-inactive-1").status_code == 303
    assert "That reward is not available." in flashes(advocate_client)
    assert advocate_client.get("/admin/rewards").status_code == 403


def test_reward_html_is_escaped_everywhere(app, advocate_client, advocate, admin_client):
    name = "<script>alert('n')</script>Mug"
    description = '<img src=x onerror="alert(1)">'
    give(advocate.id, 500)
    rid = make_reward(cost=100, name=name, description=description)
    redeem(advocate_client, rid, "order-xss-1")
    pages = {
        "/rewards": advocate_client.get("/rewards"),
        "/me/redemptions": advocate_client.get("/me/redemptions"),
        "/admin/rewards": admin_client.get("/admin/rewards"),
        f"/admin/rewards/{rid}": admin_client.get(f"/admin/rewards/{rid}"),
        "/admin/redemptions": admin_client.get("/admin/redemptions"),
    }
    for url, resp in pages.items():
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200, url
        assert "<script>alert" not in body and "<img src=x" not in body, url
        assert "&lt;script&gt;alert(" in body, url
    assert "&lt;img src=x onerror=" in pages["/rewards"].get_data(as_text=True)


def test_forged_out_of_range_ids_are_not_found_not_500(app, advocate_client, advocate, admin_client):
    """Ids beyond the integer column's range made PostgreSQL raise (a 500) instead of finding nothing."""
    give(advocate.id, 100)
    huge = "99999999999"
    resp = redeem(advocate_client, "9999999999", "order-huge-id-1")  # the most digits the form accepts
    assert resp.status_code == 303 and "That reward is not available." in flashes(advocate_client)
    resp = post_form(advocate_client, f"/me/redemptions/{huge}/cancel", {}, page="/me/redemptions")
    assert resp.status_code == 404
    for action in ("fulfil", "cancel"):  # such ids match no route at all (portal.routing.BoundedIntConverter)
        resp = post_form(admin_client, f"/admin/redemptions/{huge}/{action}", {}, page="/admin/redemptions")
        assert resp.status_code == 404
    assert admin_client.get(f"/admin/rewards/{huge}").status_code == 404
    assert _redemptions() == [] and cached(advocate.id) == (100, 100)


# --- editing a reward while orders come in ---------------------------------------------------------------------


def _orders(make_user, rid, n):
    """n advocates each order the reward once (stock goes down by n)."""
    for i in range(n):
        u = make_user(name=f"Buyer {i}")
        give(u.id, 1000)
        rewards.redeem(db.session, reload(User, u.id), rid, f"buy-{i}")
        db.session.commit()


def _edit(name="Hoodie", stock="5", **over):
    return {
        "name": name,
        "description": "",
        "points_cost": "200",
        "stock": stock,
        "per_advocate_limit": "",
        "active": "y",
        **over,
    }


def test_saving_an_edit_form_opened_before_orders_does_not_put_the_stock_back(app, admin_client, make_user):
    rid = make_reward(cost=200, stock=5, name="Hoodie")
    opened = reward_edit_form(admin_client, rid)
    assert opened["stock_seen"] == "5"
    _orders(make_user, rid, 3)
    assert _stock(rid) == 2
    resp = edit_reward(admin_client, rid, _edit(name="Program hoodie", stock="5"), opened=opened)  # rename only
    assert resp.status_code == 302
    r = reload(Reward, rid)
    assert (r.name, r.stock) == ("Program hoodie", 2)  # not 5: the three ordered are not sold again


def test_a_stock_change_is_applied_to_what_is_left(app, admin_client, admin, make_user):
    rid = make_reward(cost=200, stock=5, name="Hoodie")
    opened = reward_edit_form(admin_client, rid)
    _orders(make_user, rid, 3)
    assert edit_reward(admin_client, rid, _edit(stock="8"), opened=opened).status_code == 302  # 3 more arrived
    assert _stock(rid) == 5
    (event,) = [e for e in audits("reward.update")]
    assert (event.details["stock_seen"], event.details["stock_entered"], event.details["stock"]) == (5, 8, 5)


def test_a_stock_change_that_would_go_below_zero_is_refused(app, admin_client, make_user):
    rid = make_reward(cost=200, stock=5, name="Hoodie")
    opened = reward_edit_form(admin_client, rid)
    _orders(make_user, rid, 3)
    resp = edit_reward(admin_client, rid, _edit(name="Renamed", stock="1"), opened=opened)  # 2 left, minus 4
    assert resp.status_code == 409
    assert "The stock changed since you opened this form (it is now 2)." in page_text(resp)
    r = reload(Reward, rid)
    assert (r.name, r.stock) == ("Hoodie", 2)  # nothing saved
    # A freshly opened form works.
    assert edit_reward(admin_client, rid, _edit(name="Renamed", stock="0")).status_code == 302
    r = reload(Reward, rid)
    assert (r.name, r.stock) == ("Renamed", 0)


def test_unlimited_and_limited_stock_edits(app, admin_client, make_user):
    rid = make_reward(cost=200, stock=None, name="Sticker")
    opened = reward_edit_form(admin_client, rid)
    assert opened["stock_seen"] == "none"
    _orders(make_user, rid, 2)  # unlimited: nothing is taken
    assert edit_reward(admin_client, rid, _edit(stock="10"), opened=opened).status_code == 302
    assert _stock(rid) == 10
    assert edit_reward(admin_client, rid, _edit(stock="")).status_code == 302
    assert _stock(rid) is None
    # Someone else limited it meanwhile: this form's "from unlimited to 3" is refused, not applied blindly.
    opened = reward_edit_form(admin_client, rid)
    assert edit_reward(admin_client, rid, _edit(stock="7")).status_code == 302
    resp = edit_reward(admin_client, rid, _edit(stock="3"), opened=opened)
    assert resp.status_code == 409 and "it is now 7" in page_text(resp)
    assert _stock(rid) == 7


def test_an_edit_form_without_the_stock_it_was_opened_with_is_refused(app, admin_client):
    rid = make_reward(cost=200, stock=5, name="Hoodie")
    for seen in (None, "", "lots", "-1"):
        data = {"csrf_token": reward_edit_form(admin_client, rid)["csrf_token"], **_edit(name="Changed", stock="9")}
        if seen is not None:
            data["stock_seen"] = seen
        resp = admin_client.post(f"/admin/rewards/{rid}", data=data)
        assert resp.status_code == 422 and "This form is out of date; reload the page." in page_text(resp), seen
    r = reload(Reward, rid)
    assert (r.name, r.stock) == ("Hoodie", 5)


def test_stock_edit_service_never_goes_below_zero(app, admin):
    rid = make_reward(cost=10, stock=1, name="Pin")
    r = db.session.get(Reward, rid)
    data = rewards.RewardInput(name="Pin", description="", points_cost=10, stock=0, per_advocate_limit=None)
    with pytest.raises(rewards.StockChanged):
        rewards.update_reward(db.session, r, data, admin.id, stock_seen=3)  # 1 - 3 < 0
    db.session.rollback()
    assert _stock(rid) == 1
