"""A real OpenID provider for the tests, built from Authlib's server side: the authorization code grant
with OpenID Connect (``OpenIDCode``) and PKCE (``CodeChallenge``, S256), a discovery document, a JWKS with
an RSA key, a userinfo endpoint, RP-initiated logout, and a login form and consent page of its own.

``OpenIDProvider(...).start()`` serves it on 127.0.0.1 with werkzeug's threaded server (the portal talks
to it over HTTP as it would to a real one). Tests drive it like a browser with ``Browser`` (requests), or
with Chromium. ``tweak`` makes the next tokens wrong in one way (audience, expiry, nonce, signing key,
garbage), for the failure tests; ``reset`` puts it back.

A helper module, not a test module (tests import from it, as from tests/support.py).
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, redirect, request, session
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

from tests.support import free_port

KID = "test-key-1"


@dataclass
class Account:
    sub: str
    email: str
    password: str
    email_verified: bool = True
    name: str = ""
    org: str = ""
    title: str = ""
    groups: list[str] = field(default_factory=list)


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri):
        return urlsplit(redirect_uri).path.startswith("/auth/sso/") and redirect_uri.endswith("/callback")

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    sub: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class OpenIDProvider:
    def __init__(self, client_id: str = "portal", client_secret: str = "portal-secret"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = Client(client_id, client_secret)
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.accounts: dict[str, Account] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # access token -> (sub, scope)
        self.nonces: set[str] = set()
        self.tweak: dict = {}
        self.end_session = True
        self.lock = threading.Lock()
        self.logged_out: list[dict] = []
        self.app = self._build()
        self.server = None

    # --- the tests' controls ------------------------------------------------------------------------------------

    def add_account(self, email: str, password: str = "provider-pass-1", **fields) -> Account:
        account = Account(sub=f"sub-{secrets.token_hex(6)}", email=email, password=password, **fields)
        with self.lock:  # one account per address: a later test's account replaces an earlier one's
            for sub in [sub for sub, a in self.accounts.items() if a.email == email]:
                del self.accounts[sub]
            self.accounts[account.sub] = account
        return account

    def reset(self) -> None:
        with self.lock:
            self.tweak = {}
            self.end_session = True
            self.logged_out.clear()

    def provider_config(self, name: str = "acme", label: str = "Acme ID", **options) -> dict:
        """The portal's OIDC_PROVIDERS entry for this provider."""
        return {
            "name": name,
            "label": label,
            "server_metadata_url": f"{self.url}/.well-known/openid-configuration",
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret,
            "scopes": "openid email profile groups",
            "claims": {"name": "name", "company": "org", "job_title": "title"},
            **options,
        }

    def start(self) -> OpenIDProvider:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- the provider -------------------------------------------------------------------------------------------

    def _build(self) -> Flask:
        provider = self
        app = Flask("oidc_provider")
        app.config.update(SECRET_KEY=secrets.token_hex(16), SESSION_COOKIE_NAME="op_session")

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                with provider.lock:
                    provider.codes[code] = Code(
                        code=code,
                        client_id=req.client.client_id,
                        redirect_uri=req.payload.redirect_uri,
                        scope=req.scope,
                        sub=req.user.sub,
                        nonce=req.payload.data.get("nonce"),
                        code_challenge=req.payload.data.get("code_challenge"),
                        code_challenge_method=req.payload.data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                with provider.lock:
                    provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return provider.accounts.get(authorization_code.sub)

        class OpenID(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return nonce in provider.nonces

            def resolve_client_private_key(self, client):
                key = provider.other_key if provider.tweak.get("wrong_key") else provider.key
                return KeySet([key])

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": KID}

            def get_client_claims(self, client):
                now = int(time.time())
                claims = {"iss": provider.url, "aud": [provider.tweak.get("aud", client.get_client_id())]}
                if provider.tweak.get("expired"):
                    claims.update(iat=now - 3600, exp=now - 1800)
                return claims

            def get_authorization_code_claims(self, authorization_code):
                claims = super().get_authorization_code_claims(authorization_code)
                if "nonce" in provider.tweak:
                    claims["nonce"] = provider.tweak["nonce"]
                return claims

            def generate_user_info(self, user, scope):
                return provider._user_info(user, scope)

            def process_token(self, grant, response):
                token = super().process_token(grant, response)
                if provider.tweak.get("garbage"):
                    token["id_token"] = "not.a.token"
                return token

        def save_token(token, req):
            with provider.lock:
                provider.tokens[token["access_token"]] = (req.user.sub, token.get("scope", ""))

        server = AuthorizationServer(
            app, query_client=lambda cid: self.client if cid == self.client.client_id else None, save_token=save_token
        )
        server.register_grant(CodeGrant, [OpenID(require_nonce=True), CodeChallenge(required=True)])

        def current_account():
            sub = session.get("sub")
            return self.accounts.get(sub) if sub else None

        @app.get("/.well-known/openid-configuration")
        def discovery():
            doc = {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }
            if self.end_session:
                doc["end_session_endpoint"] = f"{self.url}/logout"
            return jsonify(doc)

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.route("/login", methods=["GET", "POST"])
        def login():
            error = ""
            if request.method == "POST":
                email = request.form.get("username", "").strip().lower()
                found = next((a for a in self.accounts.values() if a.email == email), None)
                if found is not None and secrets.compare_digest(found.password, request.form.get("password", "")):
                    session["sub"] = found.sub
                    nxt = request.form.get("next", "/")
                    return redirect(nxt if nxt.startswith("/") else "/")
                error = '<p role="alert">Wrong username or password.</p>'
            nxt = html.escape(request.values.get("next", "/"))
            return (
                '<!doctype html><html lang="en"><head><title>Acme ID sign-in</title></head><body><main>'
                f"<h1>Acme ID</h1>{error}"
                '<form method="post"><input type="hidden" name="next" value="' + nxt + '">'
                '<label for="u">Username</label><input id="u" name="username" type="email">'
                '<label for="p">Password</label><input id="p" name="password" type="password">'
                '<button type="submit">Continue</button></form></main></body></html>'
            )

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            account = current_account()
            if account is None:
                return redirect("/login?" + urlencode({"next": request.full_path}))
            try:
                grant = server.get_consent_grant(end_user=account)
            except OAuth2Error as error:
                return jsonify(dict(error.get_body())), 400
            if request.method == "GET":
                action = html.escape(request.full_path)
                return (
                    '<!doctype html><html lang="en"><head><title>Allow access</title></head><body><main>'
                    f"<h1>Allow the portal to know who you are?</h1>"
                    f'<form method="post" action="{action}">'
                    '<button name="decision" value="allow">Allow</button>'
                    '<button name="decision" value="deny">Deny</button></form></main></body></html>'
                )
            user = account if request.form.get("decision") == "allow" else None
            response = server.create_authorization_response(grant=grant, grant_user=user)
            if user is not None and grant.request.payload.data.get("nonce"):
                with self.lock:  # a nonce is used once: a second request with it is refused as a replay
                    self.nonces.add(grant.request.payload.data["nonce"])
            return response

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo():
            auth = request.headers.get("Authorization", "")
            found = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if found is None:
                return jsonify(error="invalid_token"), 401
            sub, scope = found
            return jsonify(dict(self._user_info(self.accounts[sub], scope)))

        @app.get("/logout")
        def logout():
            session.pop("sub", None)
            with self.lock:
                self.logged_out.append(dict(request.args))
            target = request.args.get("post_logout_redirect_uri")
            if target:
                state = request.args.get("state")
                return redirect(
                    target + (("&" if "?" in target else "?") + urlencode({"state": state}) if state else "")
                )
            return "<!doctype html><title>Signed out</title><p>You are signed out of Acme ID.</p>"

        return app

    def _user_info(self, account: Account, scope: str) -> UserInfo:
        info = UserInfo(sub=account.sub)
        scopes = (scope or "").split()
        if "email" in scopes:
            info["email"] = account.email
            info["email_verified"] = account.email_verified
        if "profile" in scopes:
            info["name"] = account.name
            if account.org:
                info["org"] = account.org
            if account.title:
                info["title"] = account.title
        if "groups" in scopes:
            info["groups"] = list(account.groups)
        return info


class Browser:
    """A person at the provider, driven over HTTP with requests (its own cookies): signs in on the provider's
    form and answers the consent page; gives back the portal URL the provider redirected to."""

    def __init__(self, provider: OpenIDProvider):
        self.provider = provider
        self.http = requests.Session()

    def authorize(self, authorize_url: str, email: str, password: str = "provider-pass-1", allow: bool = True) -> str:
        """Follow the portal's redirect to the provider, sign in there, allow (or deny); the callback URL."""
        resp = self.http.get(authorize_url, allow_redirects=False, timeout=10)
        if resp.status_code == 302 and "/login" in resp.headers["Location"]:
            login_url = urljoin(self.provider.url, resp.headers["Location"])
            nxt = urlsplit(authorize_url)
            resp = self.http.post(
                login_url,
                data={"username": email, "password": password, "next": f"{nxt.path}?{nxt.query}"},
                allow_redirects=False,
                timeout=10,
            )
            assert resp.status_code == 302, resp.text[:300]
            resp = self.http.get(authorize_url, allow_redirects=False, timeout=10)
        assert resp.status_code == 200, (resp.status_code, resp.text[:300])
        resp = self.http.post(
            authorize_url, data={"decision": "allow" if allow else "deny"}, allow_redirects=False, timeout=10
        )
        assert resp.status_code == 302, (resp.status_code, resp.text[:300])
        return resp.headers["Location"]
