"""``luckystack studio`` as a real process: it prints its URL with the token, serves the page there, and
stops on Ctrl-C (an open event stream too); bad arguments are one line and exit status 2. Other commands never import it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from luckystack.cli import main

LUCKYSTACK = [sys.executable, "-m", "luckystack"]


def test_serves_the_printed_url_and_stops_on_ctrl_c(recordings, tmp_path):
    proc = subprocess.Popen([*LUCKYSTACK, "--cache", str(tmp_path / "cache"), "--jobs", "1", "studio",
                             str(recordings / "a.ser"), "--no-browser", "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.match(r"open (http://127\.0\.0\.1:\d+/\?token=\S+)$", line.strip())
            url = m.group(1) if m else None
        assert url, "no URL printed"
        r = httpx.get(url, timeout=10)
        assert r.status_code == 200 and "luckystack studio" in r.text
        assert httpx.get(url.split("?")[0], timeout=10).status_code == 403
        # a page listening to the event stream does not keep the server from stopping
        listening = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", url.replace("/?", "/api/events?"), timeout=None) as events:
                listening.set()
                for _ in events.iter_lines():
                    pass

        threading.Thread(target=listen, daemon=True).start()
        assert listening.wait(10)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err


@pytest.mark.parametrize("target, message", [("missing.ser", "missing.ser"), ("empty", "no recordings")])
def test_bad_target_is_one_line(tmp_path, monkeypatch, capsys, target, message):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["studio", target, "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and message in err and "Traceback" not in err


def test_other_commands_do_not_import_the_studio(tmp_path):
    code = ("import sys; from luckystack.cli import main; main(['schema', '-o', 'schema.json']); "
            "print([m for m in sys.modules if m.startswith(('luckystack.studio', 'starlette', 'uvicorn'))])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ})
    assert done.returncode == 0 and done.stdout.strip() == "[]"
