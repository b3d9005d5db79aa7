"""A real webhook receiver on loopback that misbehaves on purpose."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records every POST; answers each with the next scripted behaviour, then "ok".

    Behaviours: "ok" (200), "fail" (500), a status code ("404": that status), "slow" (answers after ``slow_seconds``),
    "close" (drops the connection without answering), "endless" (200, then a body of up to
    ``ENDLESS_BYTES`` for as long as the sender reads it; ``endless_sent`` counts what it took),
    "trickle" (a 200 sent a byte every ``TRICKLE_SECONDS``, for as long as the sender waits),
    "hold" (200 once ``released`` is set).
    """

    ENDLESS_BYTES = 256 * 1024 * 1024
    TRICKLE_SECONDS = 0.1

    def __init__(self, script: list[str] | None = None, slow_seconds: float = 3.0):
        self.script = list(script or [])
        self.slow_seconds = slow_seconds
        self.endless_sent = 0
        self.released = threading.Event()
        self.received: list[dict] = []  # every request, answered or not
        self.accepted: list[dict] = []  # the ones answered 2xx
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "raw": body,
                    "json": json.loads(body or b"null"),
                    "started": time.monotonic(),
                    "ended": None,
                }
                with receiver.lock:
                    receiver.received.append(request)
                    behaviour = receiver.script.pop(0) if receiver.script else "ok"
                if behaviour == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if behaviour == "endless":
                    self._endless()
                    return
                if behaviour == "trickle":
                    self._trickle()
                    return
                if behaviour == "slow":
                    time.sleep(receiver.slow_seconds)
                if behaviour == "hold":
                    receiver.released.wait(60)
                status = 500 if behaviour == "fail" else int(behaviour) if behaviour.isdigit() else 200
                request["ended"] = time.monotonic()
                if status == 200:
                    with receiver.lock:
                        receiver.accepted.append(request)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _endless(self):
                self.send_response(200)
                self.send_header("Content-Length", str(Receiver.ENDLESS_BYTES))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while receiver.endless_sent < Receiver.ENDLESS_BYTES:
                        self.wfile.write(chunk)
                        receiver.endless_sent += len(chunk)
                except OSError:  # the sender hung up
                    pass
                self.close_connection = True

            def _trickle(self):
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                        time.sleep(Receiver.TRICKLE_SECONDS)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:  # the sender hung up
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        # Asked to stop, the server notices within a poll: the default half second was most of a test's teardown.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        """Bodies of accepted deliveries, verification requests left out."""
        with self.lock:
            return [request["json"] for request in self.accepted if request["json"] != {}]
