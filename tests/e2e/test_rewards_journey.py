"""Browser journey: an advocate with points redeems a reward (after the confirm dialog), finds the
order in their history, cancels another one and gets the points back; an admin fulfils the first."""

import re

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import EntrySource, Reward, Role
from portal.services import points
from tests.support import sign_in


def test_redeem_from_the_catalog_then_history_cancel_and_fulfil(live_server, browser, mailbox):
    base = live_server.url
    uid = live_server.make_user("rowan.redeemer@example.com", name="Rowan Redeemer")
    live_server.make_user("fran.fulfil@example.com", role=Role.ADMIN, name="Fran Fulfil")
    with live_server.app.app_context():
        points.award(db.session, uid, 1000, key=f"e2e-rewards:{uid}", reason="Keynote", source=EntrySource.MANUAL)
        db.session.add_all(
            [
                Reward(name="Journey backpack", description="Carries laptops", points_cost=600, stock=2),
                Reward(name="Journey sticker pack", description="Twelve stickers", points_cost=150, stock=None),
                Reward(name="Journey summit pass", description="Two days", points_cost=5000, stock=5),
            ]
        )
        db.session.commit()

    page = browser.new_page()
    sign_in(page, base, "rowan.redeemer@example.com")
    page.goto(base + "/rewards")
    expect(page.get_by_text("1,000", exact=True)).to_be_visible()
    backpack = page.locator("article", has_text="Journey backpack")
    expect(backpack.get_by_text("2 left")).to_be_visible()
    summit = page.locator("article", has_text="Journey summit pass")
    expect(summit.get_by_text("4,000 more points needed")).to_be_visible()
    expect(summit.get_by_role("button", name="Redeem")).to_have_count(0)

    # Saying "no" to the confirm dialog orders nothing.
    page.once("dialog", lambda d: d.dismiss())
    backpack.get_by_role("button", name="Redeem").click()
    page.wait_for_load_state()
    page.reload()
    expect(page).to_have_url(re.compile(r"/rewards$"))
    expect(page.get_by_text("1,000", exact=True)).to_be_visible()

    # Saying "yes" orders it.
    page.on("dialog", lambda d: d.accept())
    backpack.get_by_role("button", name="Redeem").click()
    expect(page).to_have_url(re.compile(r"/me/redemptions$"))
    expect(page.get_by_text("Your order for Journey backpack is in")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Journey backpack"))
    expect(row).to_have_count(1)  # the dismissed dialog ordered nothing
    expect(row).to_contain_text("600")
    expect(row).to_contain_text("Requested")
    assert mailbox.last("rowan.redeemer@example.com", subject="We received your order")

    # A second order, then cancel it: the points come back.
    page.goto(base + "/rewards")
    expect(page.get_by_text("400", exact=True)).to_be_visible()
    page.locator("article", has_text="Journey sticker pack").get_by_role("button", name="Redeem").click()
    expect(page.get_by_text("Your order for Journey sticker pack is in")).to_be_visible()
    page.get_by_role("row", name=re.compile("Journey sticker pack")).get_by_role("button", name="Cancel order").click()
    expect(page.get_by_text("Your order is cancelled and the points are back")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Journey sticker pack"))).to_contain_text("Cancelled")
    assert mailbox.last("rowan.redeemer@example.com", subject="Order cancelled")
    page.goto(base + "/me/points")
    expect(page.get_by_text("400 points to spend")).to_be_visible()

    # The admin fulfils the backpack; the advocate is emailed and sees it.
    admin = browser.new_context().new_page()
    sign_in(admin, base, "fran.fulfil@example.com")
    admin.goto(base + "/admin/redemptions")
    order = admin.get_by_role("row", name=re.compile("Journey backpack"))
    order.get_by_label("Note to the advocate").fill("Courier ref 42")
    order.get_by_role("button", name="Mark fulfilled").click()
    expect(admin.get_by_text("Marked fulfilled")).to_be_visible()
    assert "Courier ref 42" in mailbox.last("rowan.redeemer@example.com", subject="On its way").text
    page.goto(base + "/me/redemptions")
    row = page.get_by_role("row", name=re.compile("Journey backpack"))
    expect(row).to_contain_text("Fulfilled")
    expect(row.get_by_role("button", name="Cancel order")).to_have_count(0)
