"""A fake Hugging Face Hub on 127.0.0.1: the endpoints `huggingface_hub`'s uploads use.

`POST /api/repos/create`, `POST /api/validate-yaml` (accepts every card), `POST /api/models/{repo}/preupload/{rev}` (every file `regular`),
`POST /api/models/{repo}/commit/{rev}` (NDJSON: a header line, then one `file` line per file
with base64 content), `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}` (model
info). Every request is kept in `requests`, every commit's files in `commits`; anything else
is a 404 and is kept in `unknown`, so a test can say which endpoint it lacked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.requests: list = []
        self.unknown: list = []
        self.commits: list = []  # [{"message": str, "files": {path: bytes}}]
        self.validated: list = []  # README.md texts sent to /api/validate-yaml
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) in (4, 6):
                    repo = "/".join(parts[2:4])
                    sha = hashlib.sha1(repo.encode()).hexdigest()
                    return self._send(
                        200, {"id": repo, "modelId": repo, "sha": sha, "siblings": []}
                    )
                if self.path.startswith("/api/whoami"):
                    return self._send(200, {"name": "tester", "type": "user", "orgs": []})
                hub.unknown.append(("GET", self.path))
                self._send(404, {"error": "not served by the fake hub"})

            def do_POST(self):
                body = self._body()
                hub.requests.append(("POST", self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if self.path.startswith("/api/validate-yaml"):
                    hub.validated.append(json.loads(body)["content"])
                    return self._send(200, {"errors": [], "warnings": []})
                if self.path.startswith("/api/repos/create"):
                    payload = json.loads(body or b"{}")
                    org = payload.get("organization") or "tester"
                    repo = f"{org}/{payload['name']}"
                    return self._send(200, {"url": f"{hub.endpoint}/{repo}", "name": repo})
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self._send(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in files
                            ]
                        },
                    )
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
                    repo = "/".join(parts[2:4])
                    commit = {"repo": repo, "message": None, "files": {}}
                    for line in body.decode().splitlines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        if item["key"] == "header":
                            commit["message"] = item["value"].get("summary")
                        elif item["key"] == "file":
                            value = item["value"]
                            commit["files"][value["path"]] = base64.b64decode(value["content"])
                    hub.commits.append(commit)
                    oid = hashlib.sha1(body).hexdigest()
                    return self._send(
                        200,
                        {
                            "commitUrl": f"{hub.endpoint}/{repo}/commit/{oid}",
                            "commitOid": oid,
                            "pullRequestUrl": None,
                        },
                    )
                hub.unknown.append(("POST", self.path))
                self._send(404, {"error": "not served by the fake hub"})

        return Handler
