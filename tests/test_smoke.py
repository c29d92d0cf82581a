from tests.support import post_form


def test_landing_page(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert b"Join the program" in resp.data


def test_login_roles(advocate_client, admin_client, staff_client):
    assert advocate_client.get("/dashboard").status_code == 200
    assert admin_client.get("/admin/").status_code == 200
    assert staff_client.get("/admin/").status_code == 403
    assert advocate_client.get("/admin/").status_code == 403


def test_register_sends_mail(client, mailbox):
    resp = post_form(
        client,
        "/auth/register",
        {
            "name": "Bea <b>Bold</b>",
            "email": "bea@example.com",
            "company": "Globex",
            "job_title": "CTO",
            "password": "purple-otter-skates-42",
            "confirm": "purple-otter-skates-42",
            "accept_terms": "y",
        },
    )
    assert resp.status_code == 302
    mail = mailbox.last("bea@example.com")
    assert "<b>" not in mail.text and "<b>" not in mail.html
    assert "/auth/verify/" in mail.link("/auth/verify/")
