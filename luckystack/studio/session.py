"""A studio session: the recording(s), the pipeline being edited, and one background thread that runs
every edit through the engine (``api.run``, the command line's cache and output folder), one run at a
time. What happens is published as numbered events (node started, progress, finished; run done) that
the server streams to the page.

Edits are coalesced: while a run is going, only the latest edit waits, and it runs next.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.graph.node import NodeError
from luckystack.graph.progress import Reporter
from luckystack.graph.spec import Pipeline, PipelineError, apply_overrides
from luckystack.graph.validate import pipeline_from_dict
from luckystack.graph.store import CacheStore
from luckystack.io.folder import KINDS as FRAME_KINDS
from luckystack.io.formats import formats

FRAME_SUFFIXES = tuple(FRAME_KINDS)  # the single images a folder of frames is made of
PROGRESS_EVERY_S = 0.1


def recording_suffixes() -> set[str]:
    """Suffixes of the files a registered format reads as a recording (what ``run`` reads); a single
    image, which the folder format also reads, is a frame, not a recording."""
    return {s for f in formats() if not f.folders for s in f.suffixes}


def find_recordings(folder: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Recordings in ``folder``: files of a registered recording format (SER, FITS cube, video...), and
    subfolders of at least two frame images."""
    skipped = {p.resolve() for p in skip}
    suffixes = recording_suffixes()
    found = []
    for p in sorted(folder.iterdir()):
        if p.resolve() in skipped or p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in suffixes:
            found.append(p)
        elif p.is_dir():
            try:
                frames = [c for c in p.iterdir() if c.is_file() and c.suffix.lower() in FRAME_SUFFIXES]
            except OSError:
                continue
            if len(frames) >= 2:
                found.append(p)
    return found


class EventLog:
    """Numbered events, the latest few thousand kept; readers ask for those after the last they saw."""

    def __init__(self, keep: int = 4000) -> None:
        self._events: deque[tuple[int, dict]] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()

    def publish(self, kind: str, **data: Any) -> int:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, {"kind": kind, "time": time.time(), **data}))
            return self._seq

    @property
    def last(self) -> int:
        return self._seq

    def since(self, seq: int) -> list[tuple[int, dict]]:
        with self._lock:
            return [(s, e) for s, e in self._events if s > seq]


class EventReporter(Reporter):
    """The engine's progress hooks as events (progress at most every ``PROGRESS_EVERY_S`` per node)."""

    def __init__(self, events: EventLog, job: int, recording: str) -> None:
        self.events, self.job, self.recording = events, job, recording
        self._progress: dict[str, list] = {}  # node → [done, total, label, last published]

    def start(self, node_id: str, what: str) -> None:
        self._progress[node_id] = [0, 0, "", 0.0]
        self.events.publish("node", job=self.job, recording=self.recording, node=node_id, state="running",
                            why=what.removeprefix("running: "))

    def total(self, node_id: str, total: int, label: str) -> None:
        self._progress[node_id] = [0, total, label, 0.0]

    def advance(self, node_id: str, n: int = 1) -> None:
        st = self._progress.get(node_id)
        if st is None:
            return
        st[0] += n
        now = time.monotonic()
        if now - st[3] >= PROGRESS_EVERY_S or st[0] >= st[1]:
            st[3] = now
            self.events.publish("progress", job=self.job, recording=self.recording, node=node_id,
                                done=st[0], total=st[1], label=st[2])

    def finish(self, node_id: str, status: str, seconds: float) -> None:
        self._progress.pop(node_id, None)
        self.events.publish("node", job=self.job, recording=self.recording, node=node_id, state=status,
                            seconds=round(seconds, 3))

    def log(self, message: str) -> None:
        self.events.publish("log", job=self.job, recording=self.recording, message=message)


@dataclass
class Job:
    """One run (an edit on the current recording) or a batch (the pipeline on every recording)."""

    id: int
    kind: str
    recordings: list[Path]
    pipeline: Pipeline = field(repr=False)
    state: str = "queued"
    seconds: float = 0.0
    error: str | None = None
    records: list[dict] = field(default_factory=list)
    asked: float = field(default_factory=time.perf_counter)

    def summary(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "seconds": round(self.seconds, 3),
                "error": self.error, "recordings": [p.name for p in self.recordings], "records": self.records}


class Session:
    """The recording folder, the pipeline being edited and the runs made of it."""

    def __init__(self, target: Path, pipeline: Path, cache: Path, out: Path, jobs: int | None = None,
                 autorun: bool = True) -> None:
        target = Path(target)
        if not target.exists():
            raise PipelineError(f"{target}: not found")
        self.cache, self.out, self.jobs = Path(cache).resolve(), Path(out).resolve(), jobs
        self.store = CacheStore(self.cache)  # one for the session: what it has checked, it knows (manifests)
        self.folder_mode = target.is_dir() and not self._frames_folder(target)
        self.folder = (target if self.folder_mode else target.parent).resolve()
        self.recordings = (find_recordings(self.folder, (self.cache, self.out)) if self.folder_mode
                           else [target.resolve()])
        if not self.recordings:
            raise PipelineError(f"{target}: no recordings (SER, AVI, FITS cubes, folders of frames) in it")
        self.current = self.recordings[0]
        self.pipeline_source = str(pipeline)
        self.events = EventLog()
        self.pipeline = self._one_setting(api.load_pipeline(pipeline))
        self.jobs_done: list[Job] = []
        self.job: Job | None = None  # the one running
        self._pending: Job | None = None
        self._next_id = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread = threading.Thread(target=self._worker, name="studio-runner", daemon=True)
        self._thread.start()
        if autorun:
            self.submit("run")

    @staticmethod
    def _frames_folder(path: Path) -> bool:
        return any(p.is_file() and p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir())

    # -- editing ------------------------------------------------------------------------------
    def raw(self) -> dict:
        return copy.deepcopy(self.pipeline.raw)

    def edit(self, sets: dict[str, Any]) -> Job:
        """Apply ``{"node.param": value}`` to the pipeline (validated: PipelineError) and run it."""
        raw = apply_overrides(self.pipeline.raw, sets, "studio")
        self._replace(pipeline_from_dict(raw, "studio"))
        return self.submit("run")

    def open_pipeline(self, raw: dict, source: str = "opened pipeline") -> Job:
        """Make ``raw`` (a pipeline file's content) the session's pipeline and run it."""
        if not isinstance(raw, dict):
            raise PipelineError(f"{source}: a pipeline file must be a JSON object with 'name' and 'nodes'")
        self._replace(self._one_setting(pipeline_from_dict(raw, source)))
        self.pipeline_source = source
        return self.submit("run")

    def _replace(self, pipeline: Pipeline) -> None:
        with self._lock:
            self.pipeline = pipeline

    def _one_setting(self, pipeline: Pipeline) -> Pipeline:
        """The pipeline without its sweep: the studio shows one setting at a time."""
        if pipeline.sweep is None:
            return pipeline
        self.events.publish("log", message="the pipeline's sweep is left out: the studio runs one setting "
                                           "(`luckystack run` runs the sweep)")
        raw = {k: v for k, v in pipeline.raw.items() if k != "sweep"}
        return pipeline_from_dict(raw, pipeline.source)

    def save_pipeline(self, path: Path) -> Path:
        """Write the pipeline with the chosen settings as a pipeline file."""
        raw = self.raw()
        raw.pop("$schema", None)
        path.write_text(json.dumps(raw, indent=2) + "\n")
        return path

    def select(self, name: str) -> Job:
        """Make the recording named ``name`` (one of the folder's) the current one and run it."""
        for p in self.recordings:
            if p.name == name:
                self.current = p
                return self.submit("run")
        raise PipelineError(f"no recording {name!r} in {self.folder}")

    # -- running ------------------------------------------------------------------------------
    def submit(self, kind: str) -> Job:
        """Queue a run of the current pipeline (on the current recording, or all for ``batch``); a
        queued run not yet started is replaced."""
        with self._lock:
            self._next_id += 1
            recs = list(self.recordings) if kind == "batch" else [self.current]
            job = Job(self._next_id, kind, recs, self.pipeline)
            if self._pending is not None:
                self._pending.state = "replaced"
                self.events.publish("job", job=self._pending.summary())
            self._pending = job
            self._wake.notify()
        self.events.publish("job", job=job.summary())
        return job

    def _worker(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                job, self._pending = self._pending, None
                self.job = job
            self._run(job)
            with self._lock:
                self.job = None
                self.jobs_done.append(job)
                del self.jobs_done[:-50]
                self._wake.notify_all()

    def _run(self, job: Job) -> None:
        job.state = "running"
        self.events.publish("job", job=job.summary())
        try:
            for k, rec in enumerate(job.recordings):
                reporter = EventReporter(self.events, job.id, rec.name)
                t0 = time.perf_counter()
                [run] = api.run(job.pipeline, [rec], cache=self.store, out=self.out, jobs=self.jobs,
                                reporter=reporter)
                job.records.append({"recording": rec.name, "seconds": round(time.perf_counter() - t0, 3),
                                    "ran": run.record.ran(), "out_dir": run.record.out_dir,
                                    "warnings": run.record.warnings(),
                                    "exports": [os.path.relpath(e, self.out) for e in run.record.exports()]})
                if job.kind == "batch":
                    self.events.publish("batch", job=job.id, done=k + 1, total=len(job.recordings),
                                        recording=rec.name)
            job.state = "done"
        except (NodeError, PipelineError) as e:
            node = getattr(e, "node_id", None)
            job.state, job.error = "failed", f"{node + ': ' if node else ''}{e}"
        except Exception as e:
            if self._stop:  # the studio is stopping (Ctrl-C): the run's workers went first
                job.state, job.error = "stopped", "the studio stopped"
            else:  # an engine or node bug: shown on the page, the server goes on
                job.state, job.error = "failed", f"internal error: {type(e).__name__}: {e}"
                traceback.print_exc()
        job.seconds = time.perf_counter() - job.asked
        self.events.publish("job", job=job.summary())

    def job_summaries(self, recent: int = 5) -> tuple[dict | None, list[dict]]:
        """The running job's summary (None when idle) and those of the last ``recent`` finished ones."""
        with self._lock:
            return (self.job.summary() if self.job else None), [j.summary() for j in self.jobs_done[-recent:]]

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until no run is going or queued (for tests and scripts); False on timeout."""
        end = time.monotonic() + timeout
        with self._lock:
            while self.job is not None or self._pending is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify_all()

    # -- what the page shows ------------------------------------------------------------------
    def statuses(self, recording: Path | None = None, pipeline: Pipeline | None = None) -> dict:
        """Each node's key, cached or why it would run (``explain``), and its running state if any."""
        return api.explain(pipeline or self.pipeline, recording or self.current, self.store)

    def node_of_type(self, type_name: str, pipeline: Pipeline | None = None) -> str | None:
        for nid, node in (pipeline or self.pipeline).nodes.items():
            if node.type.name == type_name:
                return nid
        return None

    def recording_states(self) -> list[dict]:
        """Per recording: how many of the pipeline's nodes are cached for it (all: done)."""
        out = []
        for rec in self.recordings:
            try:
                st = self.statuses(rec)
                cached = sum(s.cached for s in st.values())
                out.append({"name": rec.name, "cached": cached, "nodes": len(st),
                            "state": "done" if cached == len(st) else ("partly cached" if cached else "not run")})
            except (PipelineError, OSError) as e:
                out.append({"name": rec.name, "cached": 0, "nodes": 0, "state": f"error: {e}"})
        return out
