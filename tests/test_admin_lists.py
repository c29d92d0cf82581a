"""The Lists pages: industries, products, size bands, regions (and their countries), use-case and topic
tags. Add, rename, reorder, retire and restore; move a country; rename, merge and retire a tag. Every change
audited; bad names refused with a message and a 422; a retired item stays on the profiles that have it and
is no longer offered; renames and merges reach search."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Country,
    Industry,
    Opportunity,
    Product,
    Region,
    SearchPending,
    SizeBand,
    Tag,
    TagKind,
    profile_tags,
)
from portal.services import lists, profiles
from tests.support import (
    activity_type_id,
    admin_form,
    advocate_profile,
    apply_pending,
    audits,
    client_for,
    find,
    item_id,
    make_advocate,
    make_opp,
    names,
    pending_rows,
    post_form,
    profile_data,
    text_of,
)


def queued_advocates() -> set[int]:
    return {r.doc_id for r in pending_rows() if r.doc_type == "advocates"}


def clear_queue() -> None:
    db.session.rollback()
    db.session.query(SearchPending).delete()
    db.session.commit()


def tag_id(kind: TagKind, name: str) -> int:
    db.session.rollback()
    return db.session.scalar(select(Tag.id).where(Tag.kind == kind, Tag.slug == profiles.tag_slug(name)))


def tag_names(uid: int) -> list[str]:
    """The advocate's topics."""
    db.session.rollback()
    return sorted(t.name for t in db.session.get(AdvocateProfile, uid).topics)


def options(html: str, select_id: str) -> list[str]:
    block = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return [re.sub(r"\s+", " ", o).strip() for o in re.findall(r"<option[^>]*>(.*?)</option>", block, re.S)]


def checkbox_values(html: str, name: str) -> set[int]:
    return {int(v) for v in re.findall(rf'<input[^>]*name="{name}"[^>]*value="(\d+)"', html)}


# --- the pages -------------------------------------------------------------------------------------------------------


def test_the_lists_page_links_every_list_and_the_recognition_pages(app, admin_client):
    html = admin_client.get("/admin/lists").get_data(as_text=True)
    for href in (
        "/admin/lists/industries",
        "/admin/lists/products",
        "/admin/lists/size-bands",
        "/admin/lists/regions",
        "/admin/lists/tags/use-cases",
        "/admin/lists/tags/topics",
        "/admin/activity-types",
        "/admin/badges",
        "/admin/rewards",
    ):
        assert f'href="{href}"' in html, href
        assert admin_client.get(href).status_code == 200, href
    assert admin_client.get("/admin/lists/bogus").status_code == 404
    assert admin_client.get("/admin/lists/tags/bogus").status_code == 404


def test_a_list_page_shows_how_many_profiles_use_each_item(app, make_user, admin_client):
    make_advocate(make_user, "a@example.com", industry="Insurance", country="FR")
    make_advocate(make_user, "b@example.com", industry="Insurance", country="DE")
    page = text_of(admin_client.get("/admin/lists/industries"))
    assert re.search(r"Insurance 2 active", page)
    regions = text_of(admin_client.get("/admin/lists/regions"))
    assert re.search(r"Europe 2 active", regions) and "Countries by region" in regions


# --- add, rename, reorder, retire, restore ---------------------------------------------------------------------------


def test_add_an_item_at_the_end_and_audit_it(app, admin, admin_client):
    resp = post_form(admin_client, "/admin/lists/industries/add", {"name": "  Space   exploration "})
    assert resp.status_code == 302
    db.session.rollback()
    item = db.session.scalar(select(Industry).where(Industry.name == "Space exploration"))
    assert item.active and item.position == db.session.scalar(select(func.max(Industry.position)))
    [event] = audits("list.add")
    assert event.actor_id == admin.id and event.details == {"list": "industries", "name": "Space exploration"}
    assert (event.target_type, event.target_id) == ("industry", item.id)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the product a name."),
        ("   ", "Give the product a name."),
        ("x" * 81, "The name of a product can be at most 80 characters."),
        ("data platform", "There is already a product called “data platform”."),  # any case
    ],
)
def test_a_bad_new_name_is_422_with_its_message(app, admin_client, name, message):
    before = db.session.scalar(select(func.count()).select_from(Product))
    resp = post_form(admin_client, "/admin/lists/products/add", {"name": name})
    assert resp.status_code == 422 and message in text_of(resp)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Product)) == before
    assert audits("list.add") == []


def test_rename_audits_and_requeues_the_advocates_who_have_it(app, make_user, admin, admin_client):
    has = make_advocate(make_user, "has@example.com", industry="Insurance")
    make_advocate(make_user, "other@example.com", industry="Healthcare")
    clear_queue()
    ins = item_id(Industry, "Insurance")
    resp = post_form(admin_client, f"/admin/lists/industries/{ins}/rename", {"name": "Insurance and pensions"})
    assert resp.status_code == 302
    assert db.session.get(Industry, ins).name == "Insurance and pensions"
    [event] = audits("list.rename")
    assert event.details == {
        "list": "industries",
        "before": {"name": "Insurance"},
        "after": {"name": "Insurance and pensions"},
    }
    assert queued_advocates() == {has}
    apply_pending(db.engine)
    assert names(find("pensions")) == [db.session.get(AdvocateProfile, has).user.name]


def test_rename_refuses_a_duplicate_and_an_empty_name_on_the_page(app, admin_client):
    ins = item_id(Industry, "Insurance")
    resp = post_form(admin_client, f"/admin/lists/industries/{ins}/rename", {"name": "HEALTHCARE"})
    assert resp.status_code == 422 and "There is already a industry called “HEALTHCARE”." in text_of(resp)
    resp = post_form(admin_client, f"/admin/lists/industries/{ins}/rename", {"name": ""})
    assert resp.status_code == 422 and "Give the industry a name." in text_of(resp)
    assert db.session.get(Industry, ins).name == "Insurance" and audits("list.rename") == []
    assert post_form(admin_client, "/admin/lists/industries/999999/rename", {"name": "X"}).status_code == 404


def test_reorder_moves_an_item_among_the_active_ones(app, admin_client):
    order = lambda: [i.name for i in lists.active_items(db.session, SizeBand)]  # noqa: E731
    first, second = order()[:2]
    resp = post_form(admin_client, f"/admin/lists/size-bands/{item_id(SizeBand, second)}/up", {})
    assert resp.status_code == 302
    db.session.rollback()
    assert order()[:2] == [second, first]
    [event] = audits("list.reorder")
    assert event.details["before"][:2] == [first, second] and event.details["after"][:2] == [second, first]
    post_form(admin_client, f"/admin/lists/size-bands/{item_id(SizeBand, second)}/down", {})
    db.session.rollback()
    assert order()[:2] == [first, second]
    post_form(admin_client, f"/admin/lists/size-bands/{item_id(SizeBand, first)}/up", {})  # already first
    db.session.rollback()
    assert order()[:2] == [first, second] and len(audits("list.reorder")) == 2


def test_retire_keeps_existing_profiles_and_hides_it_from_new_choices(app, make_user, admin, admin_client):
    had = make_advocate(make_user, "had@example.com", industry="Insurance", products=["Data Platform"])
    new = make_advocate(make_user, "new@example.com")
    ins, prod = item_id(Industry, "Insurance"), item_id(Product, "Data Platform")
    assert post_form(admin_client, f"/admin/lists/industries/{ins}/retire", {}).status_code == 302
    assert post_form(admin_client, f"/admin/lists/products/{prod}/retire", {}).status_code == 302
    assert [e.details for e in audits("list.retire")] == [
        {"list": "industries", "name": "Insurance", "before": {"active": True}, "after": {"active": False}},
        {"list": "products", "name": "Data Platform", "before": {"active": True}, "after": {"active": False}},
    ]
    assert "retired" in text_of(admin_client.get("/admin/lists/industries"))

    # the advocate who has them: still shown, still selected, and the profile saves with them
    mine = client_for(app, had)
    html = mine.get("/me/profile").get_data(as_text=True)
    assert "Insurance" in options(html, "industry_id")
    assert re.search(rf'<option selected value="{ins}">Insurance</option>', html)
    resp = post_form(mine, "/me/profile", profile_data(industry_id=str(ins), product_ids=[str(prod)]))
    assert resp.status_code == 302, text_of(resp)
    db.session.rollback()
    profile = db.session.get(AdvocateProfile, had)
    assert profile.industry_id == ins and [p.id for p in profile.products] == [prod]

    # a new choice: not offered, and refused if forged
    theirs = client_for(app, new)
    html = theirs.get("/me/profile").get_data(as_text=True)
    assert "Insurance" not in options(html, "industry_id") and "Data Platform" not in html
    resp = post_form(theirs, "/me/profile", profile_data(industry_id=str(ins)))
    assert resp.status_code == 422
    assert db.session.get(AdvocateProfile, new).industry_id is None
    offered = checkbox_values(admin_client.get("/admin/opportunities/new").get_data(as_text=True), "industry_ids")
    assert ins not in offered and item_id(Industry, "Healthcare") in offered

    # history and search keep it
    apply_pending(db.engine)
    assert had in [h.user.id for h in find("", industry=str(ins)).hits]

    # restored: offered again
    assert post_form(admin_client, f"/admin/lists/industries/{ins}/restore", {}).status_code == 302
    assert "Insurance" in options(theirs.get("/me/profile").get_data(as_text=True), "industry_id")
    assert [e.details["after"] for e in audits("list.restore")] == [{"active": True}]


def test_an_opportunity_keeps_a_retired_target_when_edited(app, admin_client):
    opp_id = make_opp("speaking", title="Targeted panel")
    opp = db.session.get(Opportunity, opp_id)
    opp.industries = [db.session.get(Industry, item_id(Industry, "Insurance"))]
    db.session.commit()
    post_form(admin_client, f"/admin/lists/industries/{item_id(Industry, 'Insurance')}/retire", {})
    html = admin_client.get(f"/admin/opportunities/{opp_id}/edit").get_data(as_text=True)
    assert item_id(Industry, "Insurance") in checkbox_values(html, "industry_ids")
    form = admin_form(
        activity_type_id("speaking"), title="Targeted panel", industry_ids=[str(item_id(Industry, "Insurance"))]
    )
    resp = post_form(admin_client, f"/admin/opportunities/{opp_id}/edit", form)
    assert resp.status_code == 302, text_of(resp)
    db.session.rollback()
    assert [i.name for i in db.session.get(Opportunity, opp_id).industries] == ["Insurance"]


# --- regions and their countries -------------------------------------------------------------------------------------


def test_move_a_country_to_another_region(app, make_user, admin, admin_client):
    in_mx = make_advocate(make_user, "mx@example.com", country="MX")
    make_advocate(make_user, "de@example.com", country="DE")
    clear_queue()
    na = item_id(Region, "North America")
    page = admin_client.get("/admin/lists/regions").get_data(as_text=True)
    assert 'for="region-MX"' in page
    resp = post_form(
        admin_client, "/admin/lists/countries/MX/region", {"region_id": str(na)}, page="/admin/lists/regions"
    )
    assert resp.status_code == 302
    db.session.rollback()
    assert db.session.get(Country, "MX").region_id == na
    [event] = audits("list.country_region")
    assert event.details == {
        "country": "MX",
        "before": {"region": "Latin America"},
        "after": {"region": "North America"},
    }
    assert queued_advocates() == {in_mx}
    bad = post_form(
        admin_client, "/admin/lists/countries/MX/region", {"region_id": "999999"}, page="/admin/lists/regions"
    )
    assert bad.status_code == 422 and "Choose a region from the list." in text_of(bad)
    gone = post_form(
        admin_client, "/admin/lists/countries/ZZ/region", {"region_id": str(na)}, page="/admin/lists/regions"
    )
    assert gone.status_code == 404


# --- tags ------------------------------------------------------------------------------------------------------------


def test_rename_a_tag_requeues_its_advocates_and_search_finds_the_new_name(app, make_user, admin, admin_client):
    ada = advocate_profile(make_user, "ada@example.com", topics="zero trust, GDPR").id
    advocate_profile(make_user, "bob@example.com", topics="GDPR")
    clear_queue()
    zt = tag_id(TagKind.TOPIC, "zero trust")
    resp = post_form(admin_client, f"/admin/lists/tags/{zt}/rename", {"name": "Zero-trust networking"})
    assert resp.status_code == 302
    assert tag_names(ada) == ["GDPR", "Zero-trust networking"]
    [event] = audits("tag.rename")
    assert event.details == {
        "kind": "topic",
        "before": {"name": "zero trust"},
        "after": {"name": "Zero-trust networking"},
    }
    assert queued_advocates() == {ada}
    apply_pending(db.engine)
    assert [h.user.id for h in find("networking").hits] == [ada]


def test_renaming_a_tag_to_another_tags_name_says_merge(app, make_user, admin_client):
    advocate_profile(make_user, "ada@example.com", topics="zero trust, GDPR")
    zt = tag_id(TagKind.TOPIC, "zero trust")
    resp = post_form(admin_client, f"/admin/lists/tags/{zt}/rename", {"name": "gdpr"}, page="/admin/lists/tags/topics")
    assert resp.status_code == 422 and "merge this one into it instead" in text_of(resp)
    resp = post_form(
        admin_client, f"/admin/lists/tags/{zt}/rename", {"name": "x" * 41}, page="/admin/lists/tags/topics"
    )
    assert resp.status_code == 422 and "at most 40 characters" in text_of(resp)
    assert audits("tag.rename") == []


def test_merge_moves_every_profile_once_removes_the_tag_and_reindexes(app, make_user, admin, admin_client):
    only_a = advocate_profile(make_user, "a@example.com", topics="K8s").id
    both = advocate_profile(make_user, "both@example.com", topics="K8s, Kubernetes").id
    only_b = advocate_profile(make_user, "b@example.com", topics="Kubernetes").id
    uses_case = advocate_profile(make_user, "uc@example.com", use_cases="K8s").id  # another kind: untouched
    clear_queue()
    source, target = tag_id(TagKind.TOPIC, "K8s"), tag_id(TagKind.TOPIC, "Kubernetes")
    resp = post_form(
        admin_client, f"/admin/lists/tags/{source}/merge", {"into": "kubernetes"}, page="/admin/lists/tags/topics"
    )
    assert resp.status_code == 302
    assert "is merged into “Kubernetes” (2 profiles)" in text_of(admin_client.get("/admin/lists/tags/topics"))
    db.session.rollback()
    assert db.session.get(Tag, source) is None
    holders = db.session.execute(select(profile_tags.c.user_id).where(profile_tags.c.tag_id == target)).scalars().all()
    assert sorted(holders) == sorted([only_a, both, only_b])  # once each
    db.session.rollback()
    assert [t.name for t in db.session.get(AdvocateProfile, uses_case).use_cases] == ["K8s"]
    [event] = audits("tag.merge")
    assert event.details == {
        "kind": "topic",
        "merged": {"id": source, "name": "K8s"},
        "into": {"id": target, "name": "Kubernetes"},
        "profiles": 2,
    }
    assert queued_advocates() == {only_a, both}
    apply_pending(db.engine)
    assert sorted(h.user.id for h in find("kubernetes").hits) == sorted([only_a, both, only_b])


def test_merge_refusals(app, make_user, admin_client):
    advocate_profile(make_user, "a@example.com", topics="K8s", use_cases="Kubernetes")
    source = tag_id(TagKind.TOPIC, "K8s")
    page = "/admin/lists/tags/topics"
    for into, message in [
        ("", "Name the topic to merge into."),
        ("nothing like it", "There is no topic called “nothing like it”."),
        ("K8s", "Choose two different tags to merge."),
        ("Kubernetes", "There is no topic called “Kubernetes”."),  # a use case of that name: another kind
    ]:
        resp = post_form(admin_client, f"/admin/lists/tags/{source}/merge", {"into": into}, page=page)
        assert resp.status_code == 422 and message in text_of(resp), into
    assert tag_id(TagKind.TOPIC, "K8s") == source and audits("tag.merge") == []
    use_case = tag_id(TagKind.USE_CASE, "Kubernetes")
    with pytest.raises(lists.DomainError, match="same kind"):
        lists.merge_tags(db.session, source, use_case, None)


def test_a_retired_tag_stays_on_profiles_and_is_not_taken_up_anew(app, make_user, admin, admin_client):
    had = advocate_profile(make_user, "had@example.com", topics="blockchain, GDPR").id
    new = make_advocate(make_user, "new@example.com")
    bc = tag_id(TagKind.TOPIC, "blockchain")
    assert (
        post_form(admin_client, f"/admin/lists/tags/{bc}/retire", {}, page="/admin/lists/tags/topics").status_code
        == 302
    )
    assert audits("tag.retire")[0].details == {
        "kind": "topic",
        "name": "blockchain",
        "before": {"active": True},
        "after": {"active": False},
    }
    assert "blockchain" not in profiles.tag_suggestions(db.session, TagKind.TOPIC)
    # the advocate who has it keeps it when saving again
    resp = post_form(client_for(app, had), "/me/profile", profile_data(topics="blockchain, GDPR"))
    assert resp.status_code == 302 and tag_names(had) == ["GDPR", "blockchain"]
    # someone else cannot take it up
    resp = post_form(client_for(app, new), "/me/profile", profile_data(topics="Blockchain"))
    assert resp.status_code == 422 and "The topic “blockchain” is no longer used; choose another." in text_of(resp)
    # still found in search
    apply_pending(db.engine)
    assert had in [h.user.id for h in find("blockchain").hits]
    assert (
        post_form(admin_client, f"/admin/lists/tags/{bc}/restore", {}, page="/admin/lists/tags/topics").status_code
        == 302
    )
    assert "blockchain" in profiles.tag_suggestions(db.session, TagKind.TOPIC)


def test_the_tag_page_finds_and_pages(app, make_user, admin_client, monkeypatch):
    monkeypatch.setattr(lists, "TAGS_PER_PAGE", 2)
    advocate_profile(make_user, "a@example.com", topics="alpha, beta, gamma, delta")
    first = text_of(admin_client.get("/admin/lists/tags/topics"))
    assert "4 topics." in first and "Page 1 of 2" in first
    found = text_of(admin_client.get("/admin/lists/tags/topics?q=ALP"))
    assert "1 topic matching “ALP”." in found
    assert admin_client.get("/admin/lists/tags/topics?q=%25&page=99").status_code == 200
