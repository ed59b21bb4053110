"""What the harness calls to put HTTP faults on a link: a small synchronous client of the proxy's API.

The proxy in use is ``HTTPFAULTS_URL`` if set (a server someone else runs), else
``python -m saga_harness.chaos.httpfaults`` started once for this process (stopped at
exit or by :func:`close`, and by itself if this process dies without cleaning up).
Control calls are few (a link per scenario, a rule per fault window, the call log at
the end), so the client is the standard library's urllib: no event loop, no session.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from saga_harness.chaos.httpfaults.calls import Call
from saga_harness.chaos.httpfaults.rules import HttpRule
from saga_harness.chaos.spawn import Started, start_module_server, stop
from saga_harness.errors import ScenarioError

__all__ = ["HttpFaults", "close", "server_url"]

MODULE = "saga_harness.chaos.httpfaults"
_START_TIMEOUT = 15.0
_TIMEOUT = 10.0
_PAGE = 5000  # calls per page: the proxy serializes a page on the loop its links run on

_started: Started | None = None
_atexit_registered = False
_lock = threading.Lock()  # several runs on several threads share one server


def server_url() -> str:
    """The URL of the HTTP fault proxy in use, starting one if needed (see the module docstring)."""
    global _started, _atexit_registered
    url = os.environ.get("HTTPFAULTS_URL")
    if url:
        return (url if "://" in url else f"http://{url}").rstrip("/")
    with _lock:
        if _started is None or not _started.alive():
            if _started is not None:
                stop(_started)
            _started = start_module_server(MODULE, "the HTTP fault proxy", _START_TIMEOUT)
            if not _atexit_registered:
                atexit.register(close)
                _atexit_registered = True
        return _started.url()


def close() -> None:
    """Stop the proxy this process started, if any (its links and connections go with it)."""
    global _started
    with _lock:
        started, _started = _started, None
    if started is not None:
        stop(started)


def _q(part: str) -> str:
    return quote(part, safe="")


class HttpFaults:
    """A client of the HTTP fault proxy at ``url`` (default: :func:`server_url`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = (url or server_url()).rstrip("/")

    def _call(self, method: str, path: str, body: Any = None, *, what: str) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw).get("error", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                answer = raw.decode(errors="replace")
            return exc.code, answer
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ScenarioError(
                f"could not {what}: no HTTP fault proxy answers at {self.url} ({reason}). If HTTPFAULTS_URL is "
                f"set, check that its server runs; otherwise the proxy this harness started has stopped — see "
                f"its log, or run 'python -m {MODULE}' to see why it cannot start."
            ) from None

    def _fail(self, what: str, method: str, path: str, status: int, answer: Any, fix: str) -> ScenarioError:
        return ScenarioError(
            f"could not {what}: the HTTP fault proxy at {self.url} answered {status} to {method} {path}: "
            f"{answer}. {fix}"
        )

    def create_link(self, name: str, upstream: str) -> str:
        """Route a link through the proxy: returns the ``127.0.0.1:PORT`` it listens on for ``upstream``.

        A link of that name is replaced (its rules, call log and connections go).
        """
        what = f"create the HTTP fault link {name!r} to {upstream}"
        body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0"}
        status, answer = self._call("POST", "/links", body, what=what)
        if status == 409:
            self.delete_link(name)
            status, answer = self._call("POST", "/links", body, what=what)
        if status != 201:
            fix = (
                "Chaos traffic only goes to loopback: use an upstream on 127.0.0.1 (or start the proxy with "
                "--allow-host)."
                if status == 400
                else "Check the link's name and upstream address."
            )
            raise self._fail(what, "POST", "/links", status, answer, fix)
        return str(answer["listen"])

    def delete_link(self, name: str) -> None:
        """Remove a link (its listener and connections close); nothing happens if it, or the proxy, is gone."""
        try:
            self._call("DELETE", f"/links/{_q(name)}", what=f"delete the HTTP fault link {name!r}")
        except ScenarioError:
            pass

    def add_rule(self, link: str, rule: HttpRule) -> None:
        """Set ``rule`` on ``link``, after its other rules; its counts start now."""
        what = f"add the HTTP fault rule {rule.id!r} ({rule.action}) on link {link!r}"
        path = f"/links/{_q(link)}/rules"
        status, answer = self._call("POST", path, rule.to_json(), what=what)
        if status != 201:
            fix = {
                404: "Create the link first (create_link).",
                409: f"Remove the rule first (remove_rule({link!r}, {rule.id!r})) or give this one another id.",
            }.get(status, "Fix the rule's fields as the message says.")
            raise self._fail(what, "POST", path, status, answer, fix)

    def remove_rule(self, link: str, rule_id: str) -> None:
        """Remove the rule ``rule_id`` from ``link``."""
        what = f"remove the HTTP fault rule {rule_id!r} from link {link!r}"
        path = f"/links/{_q(link)}/rules/{_q(rule_id)}"
        status, answer = self._call("DELETE", path, what=what)
        if status != 204:
            raise self._fail(what, "DELETE", path, status, answer, "Check the link's name and the rule's id.")

    def calls(self, link: str, since: int = 0) -> tuple[list[Call], int]:
        """The calls logged on ``link`` with ``seq >= since``, and the ``since`` for the next read."""
        what = f"read the call log of HTTP fault link {link!r}"
        out: list[Call] = []
        while True:
            path = f"/links/{_q(link)}/calls?since={since}&limit={_PAGE}"
            status, answer = self._call("GET", path, what=what)
            if status != 200:
                raise self._fail(what, "GET", path, status, answer, "Check the link's name (create_link).")
            page = answer["calls"]
            out.extend(Call.from_json(c) for c in page)
            since = int(answer["next"])
            if len(page) < _PAGE:
                return out, since
