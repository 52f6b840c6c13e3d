"""Each refusal of the studio's server, over real HTTP: no or wrong token, a foreign Host header, a
path outside the served folders (traversal, symlinks), a bad file name to save to; and what is let in."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from luckystack.cli import shipped_pipeline
from luckystack.studio import security
from luckystack.studio.command import Server


@pytest.fixture(scope="module")
def server(recordings, tmp_path_factory):
    work = tmp_path_factory.mktemp("security")
    secret = work / "secret.txt"
    secret.write_text("not for the web")
    folder = work / "recs"
    folder.mkdir()
    os.link(recordings / "a.ser", folder / "a.ser")
    (folder / "notes.txt").write_text("observing notes")
    (folder / "escape.txt").symlink_to(secret)
    srv = Server(folder / "a.ser", shipped_pipeline("planet"), work / "cache", work / "out", jobs=1,
                 autorun=False).start()
    (work / "out").mkdir(exist_ok=True)
    (work / "out" / "result.txt").write_text("a result")
    srv.secret = secret
    yield srv
    srv.stop()


def client(srv: Server, **kw) -> httpx.Client:
    return httpx.Client(base_url=srv.base, timeout=10, **kw)


def test_binds_loopback_by_default(server):
    assert server.sock.getsockname()[0] == "127.0.0.1"
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")


@pytest.mark.parametrize("path", ["/", "/api/state", "/api/events", "/static/studio.js", "/files/notes.txt",
                                  "/api/frame.png?i=0"])
def test_refused_without_token(server, path):
    with client(server) as c:
        r = c.get(path)
    assert r.status_code == 403 and "token" in r.text


def test_refused_with_wrong_token(server):
    with client(server) as c:
        assert c.get("/", params={"token": server.token[:-1] + "x"}).status_code == 403
        assert c.get("/api/state", headers={"Authorization": "token nope"}).status_code == 403
    with client(server, cookies={security.COOKIE: "nope"}) as c:
        assert c.get("/api/state").status_code == 403


def test_post_refused_without_token(server):
    with client(server) as c:
        r = c.post("/api/edit", json={"sets": {"stack.percent": [5]}})
    assert r.status_code == 403
    assert server.session.pipeline.raw["nodes"]["stack"]["params"]["percent"] == [10, 25, 50]


def test_token_once_then_cookie_or_header(server):
    with client(server) as c:
        r = c.get("/", params={"token": server.token})
        assert r.status_code == 200 and "luckystack studio" in r.text
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        assert c.get("/api/state").status_code == 200  # the cookie now
    with client(server) as c:
        assert c.get("/api/state", headers={"Authorization": f"token {server.token}"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}", ""])
def test_refused_foreign_host(server, host):
    with client(server) as c:
        r = c.get("/api/state", params={"token": server.token}, headers={"Host": host.format(port=server.port)})
    assert r.status_code == 403 and "Host" in r.text


def test_localhost_host_allowed(server):
    with client(server) as c:
        r = c.get("/api/state", params={"token": server.token}, headers={"Host": f"localhost:{server.port}"})
    assert r.status_code == 200


def raw_get(srv: Server, target: str) -> tuple[int, str]:
    """GET ``target`` sent as is (an HTTP client would normalise ``..`` away before sending it)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                  f"Authorization: token {srv.token}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["../secret.txt", "..%2Fsecret.txt", "escape.txt", "%2Fetc%2Fpasswd",
                                  "../../../../../../etc/passwd", "%2E%2E/secret.txt", "nothing.txt"])
def test_files_outside_the_folders_refused(server, path):
    status, body = raw_get(server, "/files/" + path)
    assert status == 404 and "only the recording's folder" in body  # refused by the files route itself
    assert "not for the web" not in body and "root:" not in body
    assert raw_get(server, "/files/notes.txt") == (200, "observing notes")


def test_files_inside_served(server):
    with client(server, params={"token": server.token}) as c:
        assert c.get("/files/notes.txt").text == "observing notes"
        assert c.get("/files/result.txt").text == "a result"  # the output folder


def test_resolve_under_follows_symlinks(tmp_path):
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir(), outside.mkdir()
    (outside / "x").write_text("x")
    (inside / "link").symlink_to(outside / "x")
    (inside / "y").write_text("y")
    assert security.resolve_under(inside / "link", [inside]) is None
    assert security.resolve_under(inside / "y", [inside]) == (inside / "y").resolve()
    assert security.resolve_under(inside / ".." / "out" / "x", [inside]) is None


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/evil.json", "evil.sh", "sub/evil.json", ""])
def test_save_refuses_paths(server, name):
    with client(server, params={"token": server.token}) as c:
        r = c.post("/api/save", json={"name": name})
    assert r.status_code == 400
    assert not (Path(server.session.folder).parent / "evil.json").exists()


def test_cache_keys_checked(server):
    with client(server, params={"token": server.token}) as c:
        assert c.get("/api/result.png", params={"key": "../../etc", "label": "P25"}).status_code == 404
        assert c.get("/api/reference.png", params={"key": "0" * 64}).status_code == 404


def test_token_compare():
    assert security.token_matches("abc", "abc")
    assert not security.token_matches("abd", "abc") and not security.token_matches(None, "abc")
    assert len(security.new_token()) >= 40


def test_allowed_hosts():
    assert security.allowed_hosts("127.0.0.1", 8888) == {"127.0.0.1:8888", "localhost:8888", "[::1]:8888"}
    lan = security.allowed_hosts("192.168.1.5", 80)
    assert lan == {"192.168.1.5:80"}
    wild = security.allowed_hosts("0.0.0.0", 80)
    assert "localhost:80" in wild and "0.0.0.0:80" not in wild
    assert not security.host_allowed("attacker.example:8888", security.allowed_hosts("127.0.0.1", 8888))
    assert not security.host_allowed(None, {"localhost:1"})
