"""A stand-in for Apple's App Store Server API on loopback: it checks the bearer token each
request is signed with, as Apple does, and keeps the consumption information it is sent."""

import json
import threading

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support.loopback import JsonHandler, LoopbackServer

ISSUER = "57246542-96fe-1a63-e053-0824d011072a"
KEY_ID = "2X9R4HXF34"
CONSUMPTION = "/inApps/v2/transactions/consumption/"


class FakeAppleApi(LoopbackServer):
    """``answers`` (a status code each, for the requests to come; 202 once they run out)."""

    def __init__(self, bundle_id: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.bundle_id = bundle_id
        self.received: list[tuple[str, dict]] = []  # (transaction id, consumption information)
        self.answers: list[int] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            def do_PUT(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not fake.authorized(self.headers.get("Authorization", "")):
                    return self._send(401, {"errorCode": 4010001, "errorMessage": "Unauthenticated"})
                if not self.path.startswith(CONSUMPTION):
                    return self._send(404, {"errorCode": 4040010, "errorMessage": "Not found"})
                with fake.lock:
                    status = fake.answers.pop(0) if fake.answers else 202
                    if status == 202:
                        fake.received.append((self.path.removeprefix(CONSUMPTION), body))
                if status == 202:
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(status, {"errorCode": status * 10000, "errorMessage": "Refused by the stand-in"})

        super().__init__(Handler)

    @property
    def private_key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def authorized(self, header: str) -> bool:
        """A bearer token signed with the app's key for this bundle, as the App Store Server API takes it."""
        token = header.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1")
        except jwt.PyJWTError:
            return False
        return (
            jwt.get_unverified_header(token).get("kid") == KEY_ID
            and claims.get("iss") == ISSUER
            and claims.get("bid") == self.bundle_id
        )
