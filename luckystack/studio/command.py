"""``luckystack studio RECORDING_OR_FOLDER``: start the studio's local server and open the page."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from luckystack.graph import api
from luckystack.graph.cli import UsageError


def missing_dependencies() -> str | None:
    """A one-line hint when the studio's optional dependencies are not installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        return (f"the studio needs {e.name}: install it with  pip install 'luckystack[studio]'  "
                "(or pip install starlette uvicorn)")
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); UsageError if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Server:
    """The studio on a socket, served by uvicorn in a thread (``start``) or the caller's (``run``)."""

    def __init__(self, target: Path, pipeline: Path, cache: Path, out: Path, jobs: int | None = None,
                 host: str = "127.0.0.1", port: int = 0, autorun: bool = True) -> None:
        import uvicorn

        from luckystack.studio import security
        from luckystack.studio.server import Studio
        from luckystack.studio.session import Session

        self.session = Session(target, pipeline, cache, out, jobs, autorun=autorun)
        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.token = security.new_token()
        self.app = Studio(self.session, self.token, security.allowed_hosts(host, self.port),
                          stopping=lambda: self.uvicorn.should_exit)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3)
        self.uvicorn = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"

    def run(self) -> None:
        try:
            self.uvicorn.run(sockets=[self.sock])
        finally:
            self.session.close()

    def start(self) -> "Server":
        self._thread = threading.Thread(target=self.run, name="studio-server", daemon=True)
        self._thread.start()
        while not self.uvicorn.started:
            if not self._thread.is_alive():
                raise RuntimeError("the studio's server did not start")
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.session.close()
        self.sock.close()


def run_command(args: argparse.Namespace) -> int:
    hint = missing_dependencies()
    if hint:
        raise UsageError(hint)
    from luckystack.cli import shipped_pipeline
    from luckystack.studio import security

    target = Path(args.target)
    if not target.exists():
        raise UsageError(f"{target}: no such recording or folder")
    pipeline = Path(args.pipeline) if args.pipeline else shipped_pipeline("planet")
    server = Server(target, pipeline, Path(args.cache or api.default_cache()), Path(args.out), args.jobs,
                    args.host, args.port)
    print(f"luckystack studio on {server.session.folder if server.session.folder_mode else server.session.current}")
    print(f"open {server.url}", flush=True)
    if args.host not in security.LOOPBACK:
        print(f"warning: listening on {args.host}: other computers that can reach it and know the token can "
              "use the studio", file=sys.stderr)
    print("(Ctrl-C stops it)", file=sys.stderr, flush=True)
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, (server.url,)).start()
    server.run()
    return 0
