"""The studio's web server (Starlette): the page, its JSON API, previews from the cache, and a stream
of server-sent events for progress. Every request passes the guards of :mod:`security` first.
"""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from luckystack.graph.node import Result, find
from luckystack.graph.spec import PipelineError
from luckystack.graph.store import CacheStore
from luckystack.studio import previews, security
from luckystack.studio.session import Session

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
_KEY = re.compile(r"^[0-9a-f]{64}$")
_LABEL = re.compile(r"^[A-Za-z0-9]{1,32}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,100}\.json$")


class Refused(Exception):
    """A request the studio answers with an error status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def _entry(cache: Path, key: str | None, *types: str) -> Iterator[Result]:
    """The first port of cache entry ``key``, leased while the block reads it; refused unless the entry
    is a result of one of the node types ``types`` (by the name in its key, perhaps a former name; no
    ``types``: any)."""
    if key is None or not _KEY.match(key):
        raise Refused(404, "no such result")
    store = CacheStore(cache)
    if not store.has(key):
        raise Refused(404, "that result is not in the cache (yet)")
    try:
        kind = store.read_json(key, "key.json").get("type")
        if types and not any(_is_type(kind, t) for t in types):
            raise Refused(404, f"not a result of node type {' or '.join(types)}")
        results = store.load(key, touch=False)
    except (OSError, KeyError, ValueError) as e:
        raise Refused(404, f"cannot read that result: {e}") from None
    try:
        yield next(iter(results.values()))
    finally:
        store.release([key])


def _is_type(kind: str | None, type_name: str) -> bool:
    """Whether a cache entry's type (its name in the key, perhaps a former name) is node type ``type_name``."""
    known = find(str(kind))
    return known is not None and known.name == type_name


def _png(data: bytes, immutable: bool = False) -> Response:
    headers = {"Cache-Control": "private, max-age=86400, immutable" if immutable else "no-store"}
    return Response(data, media_type="image/png", headers=headers)


class Studio:
    """The app: routes bound to one :class:`Session`, guarded by token, Host and path checks."""

    def __init__(self, session: Session, token: str, hosts: set[str],
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.session, self.token, self.hosts, self.stopping = session, token, hosts, stopping
        self.app = Starlette(routes=[
            Route("/", self.index), Route("/static/{name}", self.static),
            Route("/api/state", self.state), Route("/api/events", self.stream),
            Route("/api/info", self.info), Route("/api/frame.png", self.frame),
            Route("/api/reference.png", self.reference), Route("/api/quality-map.png", self.quality_map),
            Route("/api/aps", self.aps), Route("/api/quality", self.quality),
            Route("/api/result.png", self.result), Route("/api/pipeline.json", self.pipeline_file),
            Route("/api/edit", self.edit, methods=["POST"]), Route("/api/open", self.open, methods=["POST"]),
            Route("/api/save", self.save, methods=["POST"]), Route("/api/select", self.select, methods=["POST"]),
            Route("/api/batch", self.batch, methods=["POST"]), Route("/files/{path:path}", self.files),
        ], exception_handlers={Refused: self._refused})

    @staticmethod
    async def _refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return PlainTextResponse(str(exc), status_code=exc.status)

    # -- the guards -----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if not security.host_allowed(request.headers.get("host"), self.hosts):
            return await PlainTextResponse("refused: the Host header does not name this server",
                                           status_code=403)(scope, receive, send)
        given = security.request_token(request.query_params, request.headers, request.cookies)
        if not security.token_matches(given, self.token):
            return await PlainTextResponse("refused: open the studio with the URL (and token) that "
                                           "`luckystack studio` printed", status_code=403)(scope, receive, send)
        from_query = "token" in request.query_params

        async def send_with_cookie(message):
            if from_query and message["type"] == "http.response.start":
                cookie = (f"{security.COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict").encode()
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    # -- page ---------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise Refused(404, "no such file")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-store"})

    # -- state --------------------------------------------------------------------------------
    async def state(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._state))

    def _state(self) -> dict:
        s = self.session
        pipeline = s.pipeline
        try:
            statuses = s.statuses(pipeline=pipeline)
            nodes = [{**st.to_dict(), "inputs": sorted({src for src, _ in pipeline.nodes[nid].inputs.values()})}
                     for nid, st in statuses.items()]
            error = None
        except (PipelineError, OSError) as e:
            statuses, nodes, error = {}, [], str(e)
        keys = {t: self._key(statuses, pipeline, t) for t in ("reader", "analyse", "reference", "align",
                                                               "stack", "merge", "post")}
        params = {nid: n.params.model_dump(mode="json") for nid, n in pipeline.nodes.items()}
        job, done = s.job_summaries()
        return {
            "folder": str(s.folder), "folder_mode": s.folder_mode, "current": s.current.name,
            "recordings": s.recording_states() if s.folder_mode else [{"name": s.current.name}],
            "pipeline": s.raw(), "pipeline_source": s.pipeline_source, "params": params,
            "ids": {t: s.node_of_type(t) for t in keys}, "keys": keys, "nodes": nodes, "error": error,
            "job": job, "jobs": done, "event": s.events.last, "results": self._results(keys["post"] if s.node_of_type("post", pipeline) else keys["merge"]),
            "out": str(s.out), "cache": str(s.cache),
        }

    @staticmethod
    def _key(statuses: dict, pipeline, type_name: str) -> str | None:
        for nid, node in pipeline.nodes.items():
            if node.type.name == type_name and nid in statuses and statuses[nid].cached:
                return statuses[nid].key
        return None

    def _results(self, key: str | None) -> dict | None:
        if key is None:
            return None
        try:
            with _entry(self.session.cache, key) as port:
                return {"key": key, "sizes": port.meta.get("sizes", []), "sharpened": port.meta.get("sharpened"),
                        "names": sorted(port.arrays)}
        except Refused:
            return None

    async def stream(self, request: Request) -> Response:
        """Server-sent events: every event after ``?after=N`` or the ``Last-Event-ID`` a reconnecting
        browser sends (default: from now), then as they come."""
        events = self.session.events
        try:
            after = int(request.headers.get("last-event-id") or request.query_params.get("after", events.last))
        except ValueError:
            raise Refused(400, "after: an event number") from None

        async def gen():
            nonlocal after
            idle = 0.0
            yield "retry: 1000\n\n"
            while not self.stopping() and not await request.is_disconnected():
                batch = events.since(after)
                for seq, event in batch:
                    after = seq
                    yield f"id: {seq}\ndata: {json.dumps(event)}\n\n"
                idle = 0.0 if batch else idle + 0.05
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.05)

        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- the recording ------------------------------------------------------------------------
    async def info(self, request: Request) -> Response:
        from luckystack.info import describe

        try:
            text = await run_in_threadpool(describe, self._recording(request))
        except (ValueError, OSError) as e:
            raise Refused(422, f"cannot read the recording: {e}") from None
        return PlainTextResponse(text)

    def _recording(self, request: Request) -> Path:
        name = request.query_params.get("recording")
        if name is None:
            return self.session.current
        for p in self.session.recordings:
            if p.name == name:
                return p
        raise Refused(404, "no such recording")

    async def frame(self, request: Request) -> Response:
        rec = self._recording(request)
        try:
            index = int(request.query_params.get("i", "0"))
        except ValueError:
            raise Refused(400, "i: a frame number") from None

        def draw() -> tuple[bytes, int]:
            stream = _stream(str(rec), rec.stat().st_mtime_ns)
            i = min(max(index, 0), stream.count - 1)
            return previews.png(previews.display(stream.read(i), (0.0, 1.0))), stream.count

        try:
            data, count = await run_in_threadpool(draw)
        except (ValueError, OSError) as e:
            raise Refused(422, f"cannot read the recording: {e}") from None
        response = _png(data)
        response.headers["X-Frame-Count"] = str(count)
        return response

    async def reference(self, request: Request) -> Response:
        key = request.query_params.get("key")

        def draw() -> bytes:
            with _entry(self.session.cache, key, "reference") as ref:
                return previews.png(previews.display(ref.array("image")))

        return _png(await run_in_threadpool(draw), immutable=True)

    async def quality_map(self, request: Request) -> Response:
        q = request.query_params

        def draw() -> bytes:
            with _entry(self.session.cache, q.get("reference"), "reference") as r, \
                 _entry(self.session.cache, q.get("aps"), "align") as a, \
                 _entry(self.session.cache, q.get("analyse"), "analyse") as v:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    return previews.png(previews.quality_map(r.array("image"), a.array("center"), a.array("size"),
                                                             a.array("quality"), v.array("valid")))

        return _png(await run_in_threadpool(draw), immutable=True)

    async def aps(self, request: Request) -> Response:
        q = request.query_params

        def read() -> dict:
            with _entry(self.session.cache, q.get("aps"), "align") as a, \
                 _entry(self.session.cache, q.get("analyse"), "analyse") as v:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    quality = previews.ap_quality(a.array("quality"), v.array("valid"))
                return {"center": a.array("center").tolist(), "size": a.array("size").tolist(), "quality": quality,
                        "ap_sizes": a.meta.get("ap_sizes"), "default_size": a.meta.get("default_size")}

        return JSONResponse(await run_in_threadpool(read))

    async def quality(self, request: Request) -> Response:
        key = request.query_params.get("key")

        def read() -> dict:
            with _entry(self.session.cache, key, "analyse") as r:
                score, valid = r.array("score"), r.array("valid").astype(bool)
                ok = valid & np.isfinite(score)
                return {"score": [round(float(x), 6) if np.isfinite(x) else None for x in score],
                        "valid": valid.tolist(), "n_valid": int(ok.sum()),
                        "sorted": [round(float(x), 6) for x in np.sort(score[ok])[::-1]]}

        return JSONResponse(await run_in_threadpool(read))

    async def result(self, request: Request) -> Response:
        q = request.query_params
        label, kind = q.get("label", ""), q.get("kind", "image")
        if not _LABEL.match(label) or kind not in ("image", "sharp"):
            raise Refused(400, "label: a stack size label such as P25; kind: image or sharp")

        def draw() -> bytes:
            with _entry(self.session.cache, q.get("key"), "post", "merge") as port:
                name = f"{kind}_{label}" if f"{kind}_{label}" in port.arrays else f"image_{label}"
                if name not in port.arrays:
                    raise Refused(404, f"no stack size {label} in that result")
                return previews.png(previews.display(port.array(name)))

        return _png(await run_in_threadpool(draw), immutable=True)

    # -- edits --------------------------------------------------------------------------------
    async def _body(self, request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Refused(415, "send JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise Refused(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "the request body must be a JSON object")
        return body

    async def _submit(self, fn, *args) -> Response:
        try:
            job = await run_in_threadpool(fn, *args)
        except PipelineError as e:
            return JSONResponse({"error": "; ".join(e.lines)}, status_code=422)
        return JSONResponse({"job": job.summary(), "event": self.session.events.last})

    async def edit(self, request: Request) -> Response:
        body = await self._body(request)
        sets = body.get("sets")
        if not isinstance(sets, dict) or not sets:
            raise Refused(400, 'give {"sets": {"node.param": value, ...}}')
        return await self._submit(self.session.edit, sets)

    async def open(self, request: Request) -> Response:
        body = await self._body(request)
        return await self._submit(self.session.open_pipeline, body.get("pipeline"),
                                  str(body.get("name") or "opened pipeline"))

    async def select(self, request: Request) -> Response:
        body = await self._body(request)
        return await self._submit(self.session.select, str(body.get("recording")))

    async def batch(self, request: Request) -> Response:
        await self._body(request)
        return await self._submit(self.session.submit, "batch")

    async def save(self, request: Request) -> Response:
        """Write the pipeline as ``<name>.json`` in the recording's folder (a plain file name only)."""
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not _NAME.match(name) or "/" in name or "\\" in name or ".." in name:
            raise Refused(400, "name: a plain file name ending in .json, e.g. my-jupiter.json")
        path = self.session.folder / name
        await run_in_threadpool(self.session.save_pipeline, path)
        return JSONResponse({"path": str(path)})

    async def pipeline_file(self, request: Request) -> Response:
        raw = self.session.raw()
        raw.pop("$schema", None)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(raw.get("name", "pipeline")))
        return Response(json.dumps(raw, indent=2) + "\n", media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.json"'})

    async def files(self, request: Request) -> Response:
        """A file under the recording's folder, the output folder or the cache; nothing else."""
        s = self.session
        rel = request.path_params["path"]
        roots = [s.folder, s.out, s.cache]
        found = None
        for root in roots:
            found = security.resolve_under(root / rel, roots) if not Path(rel).is_absolute() else None
            if found is not None:
                break
        if found is None:
            raise Refused(404, "no such file here (only the recording's folder, the output and the cache are served)")
        return FileResponse(found)


@lru_cache(maxsize=4)
def _stream(path: str, mtime_ns: int):
    """A frame stream over a recording (its description read once per file version)."""
    from luckystack.io.recording import describe
    from luckystack.io.stream import open_stream

    meta, arrays, _ = describe(Path(path))
    return open_stream(meta, arrays, path)
