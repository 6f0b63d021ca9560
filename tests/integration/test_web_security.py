"""The dashboard's token, login, CSRF and read-only rules, over a real SQLite store.

Starlette's TestClient in this process; it speaks to the app as http://127.0.0.1:8080
(the Host a browser on loopback sends). The state-changing request is a real action
(POST /api/runs, an enqueue): each refusal leaves the store without that run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from queuectl.web.app import create_app
from queuectl.web.security import CSRF_COOKIE, READ_ONLY, TOKEN_COOKIE
from tests.conftest import LOCAL, QUEUECTL, Queue

BASE = LOCAL
TOKEN = "s3cret-token"
NEW_RUN = {"id": "from-the-web", "command": "echo hi"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Queue]:
    q = Queue(tmp_path)
    q("enqueue", "--id", "first", "--command", "true")
    yield q
    q.cleanup()


def client(q: Queue, **options: Any) -> TestClient:
    return TestClient(create_app(str(q.db), **options), base_url=BASE, follow_redirects=False)


def csrf(web: TestClient) -> str:
    """The session's CSRF token: the cookie a first GET sets."""
    if CSRF_COOKIE not in web.cookies:
        web.get("/healthz")
    return str(web.cookies[CSRF_COOKIE])


def enqueued(q: Queue) -> bool:
    return "from-the-web" in [r["id"] for r in q.json("list")]


def refused(answer: Any, status: int, said: str) -> None:
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"] and said in answer.json()["error"]


def test_on_loopback_without_a_token_an_action_needs_the_csrf_token(store: Queue) -> None:
    web = client(store)
    refused(web.post("/api/runs", json=NEW_RUN), 403, "CSRF token")  # no cookie, no header
    token = csrf(web)
    refused(web.post("/api/runs", json=NEW_RUN), 403, "CSRF token")  # the cookie alone proves nothing
    refused(web.post("/api/runs", json=NEW_RUN, headers={"X-CSRF-Token": "x" * len(token)}), 403, "CSRF token")
    assert not enqueued(store)
    answer = web.post("/api/runs", json=NEW_RUN, headers={"X-CSRF-Token": token, "Origin": BASE})
    assert answer.status_code == 201, answer.text
    assert enqueued(store)


def test_the_csrf_cookie_is_set_once_and_put_in_request_state(store: Queue) -> None:
    web = client(store, token=TOKEN)
    first = web.get("/login")
    assert "SameSite=Strict" in first.headers["set-cookie"] and "Path=/" in first.headers["set-cookie"]
    token = web.cookies[CSRF_COOKIE]
    assert f'<meta name="csrf-token" content="{token}">' in first.text  # what the page's JS sends back
    assert "set-cookie" not in web.get("/login").headers  # the session keeps its token


def test_a_foreign_origin_is_refused(store: Queue) -> None:
    web = client(store)
    token = csrf(web)
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8080"):
        answer = web.post("/api/runs", json=NEW_RUN, headers={"X-CSRF-Token": token, "Origin": origin})
        refused(answer, 403, "another origin")
    assert not enqueued(store)


def test_a_rebinding_host_is_refused(store: Queue) -> None:
    """A page of evil.example whose name now points at 127.0.0.1: same origin to the browser, wrong Host to us."""
    web = client(store)
    token = csrf(web)
    evil = {"X-CSRF-Token": token, "Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
    refused(web.post("/api/runs", json=NEW_RUN, headers=evil), 403, "Host")
    assert not enqueued(store)
    for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):  # what serves here is fine
        answer = web.post("/api/runs", json={"command": "true"}, headers={"X-CSRF-Token": token, "Host": host})
        assert answer.status_code == 201, (host, answer.text)


def test_a_rebinding_host_reads_nothing_either(store: Queue) -> None:
    """With no token on loopback, a rebinding page could otherwise read every page, run and output."""
    web = client(store)
    for path in ("/api/status", "/api/runs", "/", "/runs", "/metrics", "/events"):
        refused(web.get(path, headers={"Host": "evil.example:8080"}), 403, "Host")
    assert web.get("/healthz", headers={"Host": "evil.example:8080"}).status_code == 200  # a load balancer's check


def test_a_name_allowed_with_allow_host_is_served_behind_a_proxy(store: Queue) -> None:
    web = client(store, hosts=["dash.example.com"])  # `dashboard --allow-host dash.example.com`
    proxied = {"X-CSRF-Token": csrf(web), "Host": "dash.example.com", "Origin": "http://dash.example.com"}
    assert web.post("/api/runs", json=NEW_RUN, headers=proxied).status_code == 201
    other = {**proxied, "Host": "evil.example.com", "Origin": "http://evil.example.com"}
    refused(web.post("/api/runs", json={"command": "true"}, headers=other), 403, "Host")


def test_with_a_token_nothing_but_healthz_and_login_is_served_without_it(store: Queue) -> None:
    web = client(store, token=TOKEN)
    refused(web.get("/api/status"), 401, "token")
    refused(web.get("/metrics"), 401, "token")
    refused(web.get("/api/status", headers={"Authorization": "Bearer wrong"}), 401, "token")
    page = web.get("/runs")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fruns")  # a page: the way in
    assert web.get("/healthz").status_code == 200
    assert web.get("/login").status_code == 200
    refused(web.post("/api/runs", json=NEW_RUN, headers={"X-CSRF-Token": csrf(web)}), 401, "token")
    assert not enqueued(store)


def test_a_script_with_the_bearer_token_needs_no_csrf_cookie_but_same_origin(store: Queue) -> None:
    web = client(store, token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    refused(web.post("/api/runs", json=NEW_RUN, headers={**bearer, "Origin": "http://evil.example"}), 403, "origin")
    refused(web.post("/api/runs", json=NEW_RUN, headers={**bearer, "Host": "evil.example"}), 403, "Host")
    assert not enqueued(store)
    assert web.post("/api/runs", json=NEW_RUN, headers=bearer).status_code == 201
    assert enqueued(store)


def test_login_by_link_sets_the_cookie_a_browser_is_then_let_in_by(store: Queue) -> None:
    web = client(store, token=TOKEN)
    wrong = web.get("/login?token=nope")
    assert wrong.status_code == 401 and "not this dashboard" in wrong.text and TOKEN_COOKIE not in web.cookies
    answer = web.get(f"/login?token={TOKEN}")
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(TOKEN_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie  # the cookie holds a value derived from the token, not the token
    assert web.get("/api/status").status_code == 200
    refused(web.post("/api/runs", json=NEW_RUN), 403, "CSRF token")  # a cookie is sent by the browser itself
    assert web.post("/api/runs", json=NEW_RUN, headers={"X-CSRF-Token": csrf(web), "Origin": BASE}).status_code == 201


def test_login_goes_back_to_the_page_asked_for_and_never_to_another_site(store: Queue) -> None:
    web = client(store, token=TOKEN)
    asked = web.get("/runs?state=dead&job=nightly")
    assert asked.headers["location"] == "/login?next=%2Fruns%3Fstate%3Ddead%26job%3Dnightly"
    form = web.get(asked.headers["location"])
    assert 'name="next" value="/runs?state=dead&amp;job=nightly"' in form.text  # the form carries it on
    back = web.get(f"/login?token={TOKEN}&next=%2Fruns%3Fstate%3Ddead%26job%3Dnightly")
    assert (back.status_code, back.headers["location"]) == (303, "/runs?state=dead&job=nightly")
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/x\r\nSet-Cookie: a=b"):
        gone = web.get("/login", params={"token": TOKEN, "next": elsewhere})
        assert (gone.status_code, gone.headers["location"]) == (303, "/"), elsewhere


def test_login_by_form_checks_the_forms_csrf_field(store: Queue) -> None:
    web = client(store, token=TOKEN)
    page = web.get("/login")
    field = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert field is not None and field.group(1) == web.cookies[CSRF_COOKIE]
    refused(web.post("/login", data={"token": TOKEN}), 403, "CSRF token")
    refused(web.post("/login", data={"token": TOKEN, "csrf_token": "forged" * 8}), 403, "CSRF token")
    assert TOKEN_COOKIE not in web.cookies
    wrong = web.post("/login", data={"token": "nope", "csrf_token": field.group(1)})
    assert wrong.status_code == 401
    answer = web.post("/login", data={"token": TOKEN, "csrf_token": field.group(1)})
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    assert web.get("/api/status").status_code == 200


def test_read_only_refuses_every_action_and_serves_the_rest(store: Queue) -> None:
    web = client(store, read_only=True)
    headers = {"X-CSRF-Token": csrf(web), "Origin": BASE}
    for path in ("/api/runs", "/api/runs/first/cancel", "/api/jobs/any/trigger", "/api/dlq/delete"):
        refused(web.post(path, json=NEW_RUN if path == "/api/runs" else {}, headers=headers), 403, READ_ONLY)
    assert store.state("first") == "pending"
    assert not enqueued(store)
    assert web.get("/api/status").status_code == 200
    assert web.get("/metrics").status_code == 200
    scripted = client(store, read_only=True, token=TOKEN)
    answer = scripted.post("/api/runs", json=NEW_RUN, headers={"Authorization": f"Bearer {TOKEN}"})
    refused(answer, 403, READ_ONLY)


def test_dashboard_off_loopback_can_draw_a_token_and_print_its_login_link_once(store: Queue) -> None:
    env = {k: v for k, v in store.env.items() if k != "QUEUECTL_DASHBOARD_TOKEN"}
    proc = subprocess.Popen(
        [*QUEUECTL, "dashboard", "--host", "0.0.0.0", "--port", "0", "--generate-token"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    store.procs.append(proc)
    assert proc.stderr is not None
    assert "dashboard on http://0.0.0.0:" in proc.stderr.readline()
    said = proc.stderr.readline()
    link = re.search(r"log in at http://[^:/]+:(\d+)/login\?token=(\S+) \(this token is shown once\)", said)
    assert link is not None
    port, token = link.groups()
    status = f"http://127.0.0.1:{port}/api/status"
    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(status, timeout=10)
    assert refusal.value.code == 401
    asked = urllib.request.Request(status, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert json.loads(answer.read()) == store.json("status")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert token not in proc.communicate()[1]  # printed once, in the link


def test_a_token_of_non_ascii_characters_is_accepted_by_bearer_as_by_login(store: Queue) -> None:
    """curl and scripts send the header's UTF-8 bytes; Starlette reads them as latin-1."""
    token = "clé-ünïcode-トークン"
    web = client(store, token=token)
    answer = web.get("/api/runs", headers=[(b"authorization", f"Bearer {token}".encode())])
    assert answer.status_code == 200, answer.text
    wrong = web.get("/api/runs", headers=[(b"authorization", f"Bearer {token}x".encode())])
    assert wrong.status_code == 401
    assert web.post("/login", data={"token": token, "csrf_token": csrf(web)}).status_code == 303


def test_two_dashboards_on_one_host_do_not_log_each_other_out(store: Queue, tmp_path: Path) -> None:
    """A browser sends a host's cookies to each of its ports: logging in to one dashboard keeps the other's."""
    other = Queue(tmp_path / "other")
    first, second = client(store, token=TOKEN), client(other, token="another-token")
    assert first.get(f"/login?token={TOKEN}").status_code == 303
    assert second.get("/login?token=another-token").status_code == 303
    for name, value in second.cookies.items():  # one cookie jar: the same host, another port
        first.cookies.set(name, value, domain="127.0.0.1")
    assert first.get("/api/status").status_code == 200
    other.cleanup()


def test_the_login_page_cannot_be_framed_or_cached(store: Queue) -> None:
    web = client(store, token=TOKEN)
    for answer in (web.get("/login"), web.get("/login?token=nope")):
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
