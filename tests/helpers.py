"""Helpers shared by the tests: a test SMTP server, form posting with CSRF, builders."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

TEST_PASSWORD = "correct-horse-battery-9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return self.recipients[0]

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    def links(self) -> list[str]:
        return re.findall(r"https?://[^\s<>\"']+", self.text)

    def link(self, contains: str) -> str:
        for url in self.links():
            if contains in url:
                return url
        raise AssertionError(f"no link with {contains!r} in {self.links()}")


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), on a port picked first."""

    port: int = 0
    messages: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> Mailbox:
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    def wait_for(self, address: str, count: int = 1, timeout: float = 5.0, subject: str | None = None) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.to(address) if subject is None or subject.lower() in m.subject.lower()]
            if len(got) >= count or time.monotonic() > deadline:
                assert len(got) >= count, f"expected {count} mail(s) to {address}, got {[m.subject for m in got]}"
                return got
            time.sleep(0.02)

    def last(self, address: str, subject: str | None = None) -> Mail:
        return self.wait_for(address, 1, subject=subject)[-1]


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1) or m.group(2)


def post_form(client, url: str, data: dict | None = None, page: str | None = None, **kw):
    """GET the page that holds the form (``page`` or ``url``), take its CSRF token and POST."""
    resp = client.get(page or url)
    token = csrf_from(resp.get_data(as_text=True))
    payload = {"csrf_token": token, **(data or {})}
    return client.post(url, data=payload, **kw)


def login(client, email: str, password: str = TEST_PASSWORD, remember: bool = False, next: str | None = None):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    url = "/auth/login" + (f"?next={next}" if next else "")
    return post_form(client, url, data, page="/auth/login")


def logout(client):
    return post_form(client, "/auth/logout", {}, page="/dashboard")
