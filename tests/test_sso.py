"""Single sign-on with OpenID Connect, against a real provider on 127.0.0.1 (tests/oidc_provider.py, Authlib's
server side): new advocates after the terms, linking by password, staff by domain or group, admins by the
allow-list; every failure a friendly page with its audit entry and nothing written; the lockout, suspension
and session rules; SSO mandatory for staff; the identities in the account's settings; RP-initiated logout."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.config import ConfigError
from portal.extensions import db
from portal.models import Consent, Identity, Role, Status, User, utcnow
from portal.services import privacy, sso
from portal.services.errors import Conflict
from tests.oidc_provider import Browser
from tests.support import (
    TEST_PASSWORD,
    audits,
    base_config,
    csrf_from,
    free_port,
    login,
    path_of,
    post_form,
    recorded_sql,
    text_of,
    user_by_email,
)

STAFF_DOMAIN = "corp.example.com"
BOSS = f"boss@{STAFF_DOMAIN}"


@pytest.fixture
def app_config(app_config, oidc_provider):
    down = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"  # nothing listens there
    app_config["OIDC_PROVIDERS"] = [
        oidc_provider.provider_config(
            create_accounts=True, staff_domains=[STAFF_DOMAIN], staff_groups=["portal-staff"]
        ),
        oidc_provider.provider_config(name="down", label="Down ID", server_metadata_url=down),
        oidc_provider.provider_config(name="corp", label="Corp only", allowed_domains=[STAFF_DOMAIN]),
    ]
    app_config["OIDC_ADMIN_EMAILS"] = [BOSS]
    return app_config


def start(client, name="acme", **params):
    resp = client.get(f"/auth/sso/{name}/start", query_string=params)
    assert resp.status_code == 302, resp.status_code
    return resp.headers["Location"]


def callback_path(provider, authorize_url, email, allow=True):
    return path_of(Browser(provider).authorize(authorize_url, email, allow=allow))


def come_back(client, path):
    """The provider's redirect back (a GET that writes nothing), then its page's POST on: the portal's answer."""
    page = client.get(path)
    assert page.status_code == 200 and 'id="sso-continue"' in page.get_data(True), page.status_code
    return client.post("/auth/sso/finish", data={"csrf_token": csrf_from(page.get_data(True))})


def sso_sign_in(client, provider, email, name="acme", allow=True):
    """Start at the portal, sign in at the provider, come back: the portal's answer."""
    return come_back(client, callback_path(provider, start(client, name), email, allow=allow))


def counts():
    db.session.rollback()
    users = db.session.scalar(select(func.count()).select_from(User))
    identities = db.session.scalar(select(func.count()).select_from(Identity))
    return users, identities


def identities_of(user_id):
    db.session.rollback()
    return list(db.session.scalars(select(Identity).where(Identity.user_id == user_id)))


def failures(reason):
    return [e for e in audits("auth.sign_in_failed") if e.details.get("reason") == reason]


# --- happy paths ----------------------------------------------------------------------------------------------------


def test_the_sign_in_pages_show_a_button_per_provider(client):
    for page in ("/auth/login", "/auth/register"):
        body = text_of(client.get(page))
        assert "Sign in with Acme ID" in body and "Sign in with Down ID" in body and "Sign in with Corp only" in body


def test_a_first_sign_in_creates_an_advocate_after_the_terms_with_the_claims_to_correct(
    client, oidc_provider, admin, mailbox
):
    oidc_provider.add_account("nia@example.com", name="Nia Newcomer", org="Globex", title="SRE")
    resp = sso_sign_in(client, oidc_provider, "nia@example.com")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/sso/join"), (
        text_of(resp),
        [e.details for e in audits("auth.sign_in_failed")],
    )
    assert counts() == (1, 0)  # nothing written before the terms
    page = client.get("/auth/sso/join")
    assert 'value="Nia Newcomer"' in page.get_data(True) and 'value="Globex"' in page.get_data(True)
    assert "nia@example.com" in text_of(page)

    refused = post_form(client, "/auth/sso/join", {"name": "Nia Newcomer", "company": "Globex", "job_title": "SRE"})
    assert refused.status_code == 422 and "accept the program terms" in text_of(refused)
    assert counts() == (1, 0)

    resp = post_form(
        client,
        "/auth/sso/join",
        {"name": "Nia Newcomer", "company": "Globex Corporation", "job_title": "SRE", "accept_terms": "y"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/status")
    nia = user_by_email("nia@example.com")
    assert (nia.role, nia.status, nia.company, nia.password_hash) == (
        Role.ADVOCATE,
        Status.PENDING,
        "Globex Corporation",
        None,
    )
    consent = db.session.scalar(select(Consent).where(Consent.user_id == nia.id))
    assert consent.kind == "program_terms" and consent.version == "2026-01" and consent.given_at is not None
    [identity] = identities_of(nia.id)
    assert identity.issuer == oidc_provider.url and identity.provider == "acme" and identity.email == nia.email
    assert mailbox.last(admin.email, subject="waiting for approval")
    assert client.get("/account/status").status_code == 200  # signed in, waiting for approval
    assert [e.details["via"] for e in audits("auth.sign_in", nia.id)] == ["sso"]
    assert audits("sso.link", nia.id) and audits("user.register", nia.id)

    # Next time, the identity signs in at once (found by issuer and subject).
    again = sso_sign_in(client.application.test_client(), oidc_provider, "nia@example.com")
    assert again.status_code == 302 and again.headers["Location"].endswith("/account/status")
    assert counts() == (2, 1)


def test_an_existing_account_is_linked_only_with_its_password(client, oidc_provider, make_user):
    ada = make_user(email="ada@example.com")
    oidc_provider.add_account("ada@example.com", name="Ada")
    resp = sso_sign_in(client, oidc_provider, "ada@example.com")
    assert resp.headers["Location"].endswith("/auth/sso/link")

    wrong = post_form(client, "/auth/sso/link", {"password": "not-her-password"})
    assert wrong.status_code == 401 and "not right" in text_of(wrong)
    assert identities_of(ada.id) == [] and user_by_email("ada@example.com").failed_login_count == 1
    assert audits("auth.password_check_failed", ada.id)

    resp = post_form(client, "/auth/sso/link", {"password": TEST_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard")
    assert [i.provider for i in identities_of(ada.id)] == ["acme"]
    assert client.get("/dashboard").status_code == 200
    assert audits("sso.link", ada.id) and audits("auth.sign_in", ada.id)[-1].details["via"] == "sso"


def test_staff_by_email_domain_or_group_and_admin_only_by_the_allow_list(app, oidc_provider):
    oidc_provider.add_account(f"sam@{STAFF_DOMAIN}", name="Sam Staff")
    oidc_provider.add_account("gus@partner.example.com", name="Gus Group", groups=["portal-staff"])
    oidc_provider.add_account(BOSS, name="Boss")
    oidc_provider.add_account("ann@example.com", name="Ann", org="Acme")
    for email in (f"sam@{STAFF_DOMAIN}", "gus@partner.example.com", BOSS):
        resp = sso_sign_in(app.test_client(), oidc_provider, email)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard"), email
    roles = {email: user_by_email(email).role for email in (f"sam@{STAFF_DOMAIN}", "gus@partner.example.com", BOSS)}
    assert roles == {f"sam@{STAFF_DOMAIN}": Role.STAFF, "gus@partner.example.com": Role.STAFF, BOSS: Role.ADMIN}
    assert user_by_email(BOSS).status == Status.ACTIVE and audits("user.create_admin")
    # Neither domain nor group nor the list: an advocate, through the terms page.
    assert sso_sign_in(app.test_client(), oidc_provider, "ann@example.com").headers["Location"].endswith("/join")


def test_the_allow_list_makes_no_admin_through_a_provider_not_trusted_for_staff(app, oidc_provider):
    oidc_provider.add_account(BOSS, name="Boss")
    resp = sso_sign_in(app.test_client(), oidc_provider, BOSS, name="corp")  # no staff domains or groups
    assert resp.status_code == 403 and user_by_email(BOSS) is None
    assert failures("not_allowed")


def test_signing_in_from_the_settings_links_the_identity_to_the_signed_in_account(
    app, oidc_provider, advocate, advocate_client
):
    oidc_provider.add_account("ada.private@example.com", name="Ada")  # another address at the provider
    resp = come_back(
        advocate_client, callback_path(oidc_provider, start(advocate_client, link="1"), "ada.private@example.com")
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/sso/identities")
    [identity] = identities_of(advocate.id)
    assert identity.email == "ada.private@example.com"
    assert "Acme ID" in text_of(advocate_client.get("/auth/sso/identities"))
    # That identity now signs Ada in.
    assert (
        sso_sign_in(app.test_client(), oidc_provider, "ada.private@example.com")
        .headers["Location"]
        .endswith("/dashboard")
    )


# --- failures: a friendly page, an audit entry, nothing written -----------------------------------------------------


def test_an_unreachable_provider(client):
    resp = come_back(client, "/auth/sso/down/start")
    assert resp.status_code == 502 and "could not reach Down ID" in text_of(resp)
    assert failures("provider_unreachable")[0].details["provider"] == "down"


def test_refused_consent(client, oidc_provider):
    oidc_provider.add_account("rae@example.com")
    resp = sso_sign_in(client, oidc_provider, "rae@example.com", allow=False)
    assert resp.status_code == 400 and "cancelled" in text_of(resp)
    assert failures("consent_refused") and counts() == (0, 0)


def test_a_state_that_does_not_match_and_a_callback_replayed(client, oidc_provider, make_user):
    oidc_provider.add_account("sue@example.com")
    path = callback_path(oidc_provider, start(client), "sue@example.com")
    parts = urlsplit(path)
    code = parse_qs(parts.query)["code"][0]
    forged = come_back(client, f"{parts.path}?code={code}&state=forged-state")
    assert forged.status_code == 400 and "start again" in text_of(forged)
    assert failures("state_mismatch") and counts() == (0, 0)

    # A callback that worked cannot be used a second time (its state is spent).
    make_user(email="sue@example.com")
    path = callback_path(oidc_provider, start(client), "sue@example.com")
    assert come_back(client, path).headers["Location"].endswith("/auth/sso/link")
    assert come_back(client, path).status_code == 400 and len(failures("state_mismatch")) == 2


@pytest.mark.parametrize(
    "tweak, reason",
    [
        ({"garbage": True}, "bad_token"),
        ({"expired": True}, "token_expired"),
        ({"wrong_key": True}, "bad_token"),
        ({"aud": "someone-else"}, "bad_token"),
        ({"nonce": "a-nonce-from-an-earlier-sign-in"}, "bad_token"),
    ],
    ids=["garbage", "expired", "wrong-signing-key", "wrong-audience", "replayed-nonce"],
)
def test_an_id_token_that_does_not_verify_is_refused(client, oidc_provider, tweak, reason):
    oidc_provider.add_account("tom@example.com")
    oidc_provider.tweak = tweak
    resp = sso_sign_in(client, oidc_provider, "tom@example.com")
    assert resp.status_code == 400 and "start again" in text_of(resp)
    assert [e.details["provider"] for e in failures(reason)] == ["acme"]
    assert counts() == (0, 0) and client.get("/dashboard").status_code == 302  # not signed in


def test_a_nonce_from_an_earlier_sign_in_is_refused(client, oidc_provider, make_user):
    """A real replay: the nonce of a sign-in that went through, sent again in a later ID token."""
    make_user(email="val@example.com")
    oidc_provider.add_account("val@example.com")
    first = start(client)
    nonce = parse_qs(urlsplit(first).query)["nonce"][0]
    assert come_back(client, callback_path(oidc_provider, first, "val@example.com")).status_code == 302
    oidc_provider.tweak = {"nonce": nonce}
    assert sso_sign_in(client, oidc_provider, "val@example.com").status_code == 400
    assert failures("bad_token")


def test_an_unverified_email_is_not_linked(client, oidc_provider, make_user):
    mia = make_user(email="mia@example.com")
    oidc_provider.add_account("mia@example.com", email_verified=False)
    resp = sso_sign_in(client, oidc_provider, "mia@example.com")
    assert resp.status_code == 403 and "has not confirmed your email" in text_of(resp)
    assert identities_of(mia.id) == [] and failures("email_unverified")
    assert client.get("/auth/sso/link").status_code == 302  # no link waiting


def test_a_domain_the_provider_does_not_allow(client, oidc_provider):
    oidc_provider.add_account("eve@example.com")
    resp = sso_sign_in(client, oidc_provider, "eve@example.com", name="corp")
    assert resp.status_code == 403 and "cannot sign in with Corp only" in text_of(resp)
    assert failures("domain_not_allowed") and counts() == (0, 0)


def test_an_unknown_provider_is_a_404(client):
    assert client.get("/auth/sso/nope/start").status_code == 404
    assert client.get("/auth/sso/nope/callback").status_code == 404


# --- the same rules as password sign-in -----------------------------------------------------------------------------


def _linked(oidc_provider, make_user, email, **fields):
    user = make_user(email=email, **fields)
    account = oidc_provider.add_account(email)
    db.session.add(Identity(user_id=user.id, issuer=oidc_provider.url, subject=account.sub, provider="acme"))
    db.session.commit()
    return user


def test_suspended_and_locked_accounts_are_refused(app, oidc_provider, make_user):
    _linked(oidc_provider, make_user, "sid@example.com", status=Status.SUSPENDED)
    _linked(oidc_provider, make_user, "lou@example.com", locked_until=utcnow() + timedelta(minutes=10))
    for email, words, reason in (
        ("sid@example.com", "suspended", "suspended"),
        ("lou@example.com", "locked", "locked"),
    ):
        c = app.test_client()
        resp = sso_sign_in(c, oidc_provider, email)
        assert resp.status_code == 400 and words in text_of(resp), email
        assert failures(reason) and c.get("/dashboard").status_code == 302


def test_a_sign_in_starts_a_fresh_session(app, oidc_provider, make_user):
    _linked(oidc_provider, make_user, "fay@example.com")
    c = app.test_client()
    c.get("/auth/login")
    with c.session_transaction() as s:
        s["planted"] = "by someone else"
    assert sso_sign_in(c, oidc_provider, "fay@example.com").status_code == 302
    with c.session_transaction() as s:
        assert "planted" not in s and s["sso"]["provider"] == "acme"


def test_sso_mandatory_for_staff_refuses_their_password(app, oidc_provider, make_user, staff, advocate):
    sso.set_required_for_staff(db.session, True, actor_id=None)
    db.session.commit()
    assert audits("settings.update")[-1].details == {
        "before": {"sso_required_for_staff": False},
        "after": {"sso_required_for_staff": True},
    }
    c = app.test_client()
    resp = login(c, staff.email)
    assert resp.status_code == 401 and 'use the "Sign in with" button' in text_of(resp)
    assert "Sign in with Acme ID" in text_of(resp)
    assert failures("sso_required")[0].target_id == staff.id
    wrong = login(c, staff.email, "a-wrong-password")  # a wrong password still says nothing more
    assert "email or password is not right" in text_of(wrong)
    assert login(app.test_client(), advocate.email).status_code == 302  # advocates keep their passwords
    _linked(oidc_provider, make_user, f"kim@{STAFF_DOMAIN}", role=Role.STAFF)
    assert (
        sso_sign_in(app.test_client(), oidc_provider, f"kim@{STAFF_DOMAIN}").headers["Location"].endswith("/dashboard")
    )


# --- identities in the settings -------------------------------------------------------------------------------------


def test_identities_are_listed_and_removed_but_not_the_last_way_to_sign_in(app, oidc_provider, make_user):
    ida = _linked(oidc_provider, make_user, "ida@example.com")
    c = app.test_client()
    assert sso_sign_in(c, oidc_provider, "ida@example.com").status_code == 302
    page = c.get("/auth/sso/identities")
    assert page.status_code == 200 and "Acme ID" in text_of(page)
    [identity] = identities_of(ida.id)
    resp = post_form(c, f"/auth/sso/identities/{identity.id}/remove", page="/auth/sso/identities")
    assert resp.status_code == 302 and identities_of(ida.id) == []  # she still has her password
    assert audits("sso.unlink", ida.id)

    # Without a password, the only identity stays.
    ned = _linked(oidc_provider, make_user, "ned@example.com")
    db.session.execute(User.__table__.update().where(User.id == ned.id).values(password_hash=None))
    db.session.commit()
    c = app.test_client()
    assert sso_sign_in(c, oidc_provider, "ned@example.com").status_code == 302
    [only] = identities_of(ned.id)
    resp = post_form(c, f"/auth/sso/identities/{only.id}/remove", page="/auth/sso/identities")
    assert resp.status_code == 302 and len(identities_of(ned.id)) == 1
    assert "only way you can sign in" in text_of(c.get("/auth/sso/identities"))
    # Someone else's identity: not found.
    other = post_form(c, f"/auth/sso/identities/{only.id + 1000}/remove", page="/auth/sso/identities")
    assert other.status_code == 404


# --- signing out ----------------------------------------------------------------------------------------------------


def test_signing_out_ends_the_provider_session_too(app, oidc_provider, make_user):
    _linked(oidc_provider, make_user, "liv@example.com")
    c = app.test_client()
    assert sso_sign_in(c, oidc_provider, "liv@example.com").status_code == 302
    resp = post_form(c, "/auth/logout", page="/dashboard")
    assert resp.headers["Location"] == "/auth/sso/signed-out"  # CSP form-action: not straight off-site
    page = c.get("/auth/sso/signed-out")
    assert page.status_code == 200 and page.headers["Refresh"].startswith("0; url=")
    target = urlsplit(page.headers["Refresh"][len("0; url=") :])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{oidc_provider.url}/logout"
    query = parse_qs(target.query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/"] and query["id_token_hint"][0].count(".") == 2
    assert c.get("/dashboard").status_code == 302  # signed out of the portal
    assert c.get("/auth/sso/signed-out").headers["Location"] == "/"  # once only

    # A password sign-in signs out of the portal only.
    c = app.test_client()
    assert login(c, "liv@example.com").status_code == 302
    assert post_form(c, "/auth/logout", page="/dashboard").headers["Location"] == "/"


def test_without_an_end_session_endpoint_signing_out_stays_local(app, oidc_provider, make_user):
    oidc_provider.end_session = False  # before this app's first sign-in reads the discovery document
    _linked(oidc_provider, make_user, "max@example.com")
    c = app.test_client()
    assert sso_sign_in(c, oidc_provider, "max@example.com").status_code == 302
    assert post_form(c, "/auth/logout", page="/dashboard").headers["Location"] == "/"


# --- configuration --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "providers, words",
    [
        ({"name": "x"}, "list of providers"),
        ([{"name": "x", "label": "X"}], "needs server_metadata_url"),
        ([{"name": "Bad Name", "label": "X", "server_metadata_url": "https://x", "client_id": "a",
           "client_secret": "b"}], "lower-case"),
        ([{"name": "x", "label": "X", "server_metadata_url": "ftp://x", "client_id": "a", "client_secret": "b"}],
         "http(s) URL"),
        ([{"name": "x", "label": "X", "server_metadata_url": "https://x", "client_id": "a", "client_secret": "b",
           "colour": "red"}], "unknown keys"),
        ([{"name": "x", "label": "X", "server_metadata_url": "https://x", "client_id": "a", "client_secret": "b",
           "scopes": "email"}], "includes openid"),
    ],
)  # fmt: skip
def test_providers_are_checked_at_start(tmp_path, mailbox_server, providers, words):
    cfg = base_config(f"sqlite:///{tmp_path / 'x.db'}", mailbox_server, tmp_path)
    cfg["OIDC_PROVIDERS"] = providers
    with pytest.raises(ConfigError, match="OIDC_PROVIDERS") as err:
        create_app(cfg)
    assert words in str(err.value)


def test_providers_from_the_environment_as_json(monkeypatch, tmp_path, mailbox_server):
    monkeypatch.setenv(
        "PORTAL_OIDC_PROVIDERS",
        '[{"name": "okta", "label": "Okta", "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",'
        ' "client_id": "a", "client_secret": "b", "staff_domains": ["Example.com"]}]',
    )
    application = create_app(base_config(f"sqlite:///{tmp_path / 'x.db'}", mailbox_server, tmp_path))
    [okta] = application.config["OIDC_PROVIDERS"]
    assert okta["staff_domains"] == ["example.com"] and okta["create_accounts"] is False
    assert okta["scopes"] == "openid email profile"


def test_identities_are_in_the_data_download_and_gone_with_the_account(app, oidc_provider, make_user):
    zoe = _linked(oidc_provider, make_user, "zoe@example.com")
    me = db.session.get(User, zoe.id)
    [exported] = privacy.export_user_data(db.session, me)["sign_in_identities"]
    assert exported["provider"] == "acme" and exported["issuer"] == oidc_provider.url
    privacy.delete_account(db.session, me, TEST_PASSWORD)
    db.session.commit()
    assert identities_of(zoe.id) == []


def test_the_callback_writes_nothing_and_its_outcome_is_acted_on_once(app, oidc_provider, make_user):
    fay = _linked(oidc_provider, make_user, "fay.once@example.com")
    c = app.test_client()
    path = callback_path(oidc_provider, start(c), "fay.once@example.com")
    with recorded_sql() as statements:
        page = c.get(path)
    assert page.status_code == 200 and not [s for s in statements if not s.startswith("select")]
    token = csrf_from(page.get_data(True))
    assert c.post("/auth/sso/finish", data={"csrf_token": token}).headers["Location"].endswith("/dashboard")
    fresh = csrf_from(c.get("/auth/sso/identities").get_data(True))  # the new session's token
    again = c.post("/auth/sso/finish", data={"csrf_token": fresh})
    assert again.headers["Location"].endswith("/auth/login") and len(audits("auth.sign_in", fay.id)) == 1


def test_sso_cannot_be_made_mandatory_without_a_provider_for_staff(app_config, oidc_provider):
    app_config["OIDC_PROVIDERS"] = [oidc_provider.provider_config(create_accounts=True)]  # no staff domains
    application = create_app(app_config)
    with application.app_context():
        with pytest.raises(Conflict, match="staff_domains or staff_groups"):
            sso.set_required_for_staff(db.session, True, actor_id=None)
        db.session.rollback()
        assert sso.required_for_staff(db.session) is False
        db.session.remove()
        db.engine.dispose()
