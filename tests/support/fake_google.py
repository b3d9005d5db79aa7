"""A stand-in for Google's OAuth token endpoint, its OIDC certificates and the Play Developer API
on loopback.

The token endpoint checks the service account's signed JWT assertion with the
account's public key, as Google does; the API answers only to the token it issued. The
certificates are those of a key of its own, which signs the OIDC tokens Pub/Sub would send.
"""

import datetime
import functools
import json
import secrets
import threading
import time
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from support.loopback import JsonHandler, LoopbackServer

PACKAGE = "com.example.app"
PUSH_ACCOUNT = "pubsub-push@subledger-test.iam.gserviceaccount.com"
PUSH_AUDIENCE = "https://subledger.example.com/play"


def _certificate(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate of ``key``, as Google publishes its signing keys."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oidc.subledger-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def _rsa_key(purpose: str) -> rsa.RSAPrivateKey:
    """One key per purpose for the whole run: making a 2,048-bit key takes a tenth of a second."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeGoogle(LoopbackServer):
    def __init__(self, package: str = PACKAGE):
        self.package = package
        self.key = _rsa_key("service account")
        self.access_token = secrets.token_urlsafe(16)
        self.subscriptions: dict[str, dict] = {}  # purchase token -> SubscriptionPurchaseV2
        self.products: dict[str, dict] = {}  # purchase token -> ProductPurchase
        self.catalog: dict[str, dict] = {}  # sku -> InAppProduct
        self.acknowledged: list[str] = []
        self.paths: list[str] = []  # every API path asked for, as it arrived
        self.oidc_key = _rsa_key("oidc")
        self.oidc_certs = {"oidc-1": _certificate(self.oidc_key)}
        self.certs_fetched = 0
        self.tokens_issued = 0
        self.failing = False  # answer 503 to every API call
        self.asked = threading.Event()  # set by the first call to the API
        self.answering = threading.Event()  # cleared, calls to the API wait for it (a slow Google)
        self.answering.set()
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if url.path == "/token":
                    return self._token(parse_qs(raw))
                fake.paths.append(self.path)
                if not self._authorized():
                    return
                if url.path.endswith(":acknowledge"):
                    token = url.path.split("/tokens/")[1].removesuffix(":acknowledge")
                    fake.acknowledged.append(token)
                    for store in (fake.subscriptions, fake.products):
                        if token in store:
                            store[token]["acknowledgementState"] = (
                                "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED" if store is fake.subscriptions else 1
                            )
                    return self._send(200, {})
                return self._send(404, {"error": {"code": 404}})

            def do_GET(self):
                if self.path == "/oauth2/v1/certs":
                    fake.certs_fetched += 1
                    raw = json.dumps(fake.oidc_certs).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Cache-Control", "public, max-age=3600")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                fake.paths.append(self.path)
                fake.asked.set()
                fake.answering.wait()
                if not self._authorized():
                    return
                path = urlparse(self.path).path
                prefix = f"/androidpublisher/v3/applications/{fake.package}"
                if not path.startswith(prefix):
                    return self._send(404, {"error": {"code": 404, "message": "No application was found."}})
                rest = path.removeprefix(prefix)
                found = None
                if rest.startswith("/purchases/subscriptionsv2/tokens/"):
                    found = fake.subscriptions.get(rest.rsplit("/", 1)[1])
                elif rest.startswith("/purchases/products/"):
                    found = fake.products.get(rest.rsplit("/", 1)[1])
                elif rest.startswith("/inappproducts/"):
                    found = fake.catalog.get(rest.rsplit("/", 1)[1])
                if found is None:
                    return self._send(404, {"error": {"code": 404, "message": "The purchase token was not found."}})
                return self._send(200, found)

            def _token(self, form):
                try:
                    # The audience is Google's token endpoint, whatever address the key file gives.
                    audience = "https://oauth2.googleapis.com/token"
                    public = fake.key.public_key()
                    claims = jwt.decode(form["assertion"][0], public, algorithms=["RS256"], audience=audience)
                    assert claims["scope"] == "https://www.googleapis.com/auth/androidpublisher"
                except (KeyError, jwt.PyJWTError, AssertionError):
                    return self._send(400, {"error": "invalid_grant"})
                fake.tokens_issued += 1
                return self._send(200, {"access_token": fake.access_token, "expires_in": 3600, "token_type": "Bearer"})

            def _authorized(self) -> bool:
                if fake.failing:
                    self._send(503, {"error": {"code": 503}})
                    return False
                if self.headers.get("Authorization") != f"Bearer {fake.access_token}":
                    self._send(401, {"error": {"code": 401}})
                    return False
                return True

        super().__init__(Handler)

    def service_account(self) -> str:
        """A service-account key file whose token endpoint is this stand-in."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "subledger-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "play@subledger-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{self.url}/token",
            }
        )

    @property
    def certs_url(self) -> str:
        return f"{self.url}/oauth2/v1/certs"

    def push_token(self, key: rsa.RSAPrivateKey | None = None, kid: str = "oidc-1", **claims) -> str:
        """An OIDC token as Pub/Sub sends with an authenticated push (``claims`` override its own)."""
        now = int(time.time())
        body = {
            "iss": "https://accounts.google.com",
            "aud": PUSH_AUDIENCE,
            "email": PUSH_ACCOUNT,
            "email_verified": True,
            "sub": "1234567890",
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode(body, key or self.oidc_key, algorithm="RS256", headers={"kid": kid})
