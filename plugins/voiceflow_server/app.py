"""The HTTP app: OpenAI's audio and image endpoints over the graph's models.

One ``GraphRunner`` is started with the app, and its speech node's model is loaded once and
shared by every request; heavy work runs in worker threads, at most ``jobs`` at a time with
``queue`` more waiting (beyond that, 429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import voiceflow
from voiceflow import LANGUAGES, VoiceflowError, normalize
from voiceflow.cli import jsonable
from voiceflow.messages import (
    Answer,
    AudioClip,
    Command,
    Failure,
    ImageResult,
    Segment,
    Transcript,
)

from . import formats

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# The page loads only its own files; media and images come from this server or blob: URLs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
ALIASES = ("whisper-1",)  # what OpenAI clients send: the served speech model answers to it


@dataclass(frozen=True)
class Settings:
    api_key: str | None = None
    max_upload_bytes: int = 100 * 2**20
    jobs: int = 1  # heavy requests at once (two cores: one model at a time is fastest)
    queue: int = 8  # requests waiting for a job slot; beyond, 429
    timeout_s: float = 600.0


class ApiError(Exception):
    """An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "not_found_error",
    }

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        kind = self.TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")
        if self.status == 429:
            kind = "rate_limit_error"
        body = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, self.status, headers=self.headers)


class Jobs:
    """At most ``jobs`` heavy requests at once and ``queue`` waiting; the rest are refused."""

    def __init__(self, jobs: int, queue: int) -> None:
        self.limit, self.queue = jobs, queue
        self._slots = asyncio.Semaphore(jobs)
        self.running = self.waiting = 0

    def check(self) -> None:
        """429 now when a new request could not even wait."""
        if self.running + self.waiting >= self.limit + self.queue:
            raise ApiError(
                429,
                f"busy: {self.running} requests running and {self.waiting} waiting; retry shortly",
                code="server_busy",
                headers={"Retry-After": "5"},
            )

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.check()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()


class UploadLimit:
    """ASGI middleware: a request body over the cap gets 413 before it is all read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = ApiError(
            413, f"the upload is over the server's limit of {self.max_bytes // 2**20} MB"
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large.response()(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise too_large
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except ApiError as e:
            if e.status != 413 or started:
                raise
            await e.response()(scope, receive, send)


class ImageRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str | None = None
    response_format: str = "b64_json"


def save_upload(upload: UploadFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(upload.file, out, 2**20)


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=2000)


def create_app(
    graph: Any, settings: Settings | None = None, on_ready: Callable[[], None] | None = None
) -> FastAPI:
    """The app for ``graph`` (a loaded voiceflow graph); ``on_ready`` runs once the speech
    model is loaded."""
    settings = settings or Settings()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = voiceflow.GraphRunner(graph)
        await runner.start()
        state["runner"] = runner
        state["speech"] = await runner.speech_node()  # loaded once, shared by every request
        state["jobs"] = Jobs(settings.jobs, settings.queue)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await runner.stop()

    app = FastAPI(
        title="voiceflow",
        version=voiceflow.__version__,
        summary="Speech to text, images and archive answers, on your machine",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's doc pages load scripts from a CDN; the schema is enough
        redoc_url=None,
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return e.response()

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = [str(x) for x in first.get("loc", ()) if x not in ("body", "query")]
        param = ".".join(where) or None
        return ApiError(
            400, f"{param or 'request'}: {first.get('msg', 'invalid')}", param
        ).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return ApiError(e.status_code, str(e.detail)).response()

    @app.middleware("http")
    async def authorise(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        path = request.url.path
        public = path == "/" or path.startswith(("/static/", "/api/files/"))
        if settings.api_key and not public:
            given = request.headers.get("authorization", "")
            scheme, _, key = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                key.strip().encode(), settings.api_key.encode()
            ):
                return ApiError(
                    401,
                    "missing or wrong API key (Authorization: Bearer KEY)",
                    None,
                    "invalid_api_key",
                ).response()
        return await call_next(request)

    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP})

    def node_of(*types: str) -> Any:
        for name, spec in graph.nodes.items():
            if spec.type in types:
                return name
        raise ApiError(404, f"this server's graph has no {' or '.join(types)} node")

    def served_names() -> list[str]:
        return [state["speech"].config.model, *ALIASES]

    def check_model(model: str | None) -> None:
        if model and model not in served_names():
            raise ApiError(
                400,
                f"model {model!r} is not served here: use {' or '.join(served_names())} "
                "(GET /v1/models lists them)",
                "model",
                "model_not_found",
            )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        created = int(time.time())
        names = [*served_names()]
        for spec in graph.nodes.values():
            model = getattr(spec.config, "model", None)
            if spec.type != "whisper" and isinstance(model, str):
                names.append(model)
            llm = getattr(spec.config, "llm", None)
            if isinstance(llm, str) and llm != "none":
                names.append(f"{spec.type}:{llm}")
        data = [
            {"id": n, "object": "model", "created": created, "owned_by": "voiceflow"}
            for n in dict.fromkeys(names)
        ]
        return {"object": "list", "data": data}

    async def speech_request(
        file: UploadFile,
        task: str,
        model: str | None,
        language: str | None,
        prompt: str | None,
        response_format: str,
        temperature: float,
        granularities: list[str],
        stream: bool,
    ) -> Response:
        check_model(model)
        if response_format not in formats.FORMATS:
            raise ApiError(
                400,
                f"response_format {response_format!r}: use one of {', '.join(formats.FORMATS)}",
                "response_format",
            )
        if language is not None and language not in LANGUAGES:
            raise ApiError(
                400, f"language {language!r} is not an ISO-639-1 code Whisper knows", "language"
            )
        wrong = set(granularities) - {"word", "segment"}
        if wrong:
            raise ApiError(
                400,
                f"timestamp_granularities: {sorted(wrong)}; use word, segment",
                "timestamp_granularities",
            )
        if not 0.0 <= temperature <= 1.0:
            raise ApiError(400, "temperature must be between 0 and 1", "temperature")
        samples = await decode_upload(file)
        options: dict[str, Any] = {
            "task": task,
            "word_timestamps": "word" in granularities,
            "initial_prompt": prompt or None,
        }
        if language:
            options["language"] = language
        if temperature > 0:  # 0: Whisper's fallback through higher temperatures, as OpenAI does
            options["temperature"] = temperature
        wanted = set(granularities) or {"segment"}
        if stream:
            return StreamingResponse(
                stream_transcript(samples, options), media_type="text/event-stream"
            )
        transcript = await transcribe(samples, options)
        body = formats.render(transcript, response_format, task, wanted)
        return Response(body, media_type=formats.MEDIA_TYPES[response_format])

    async def decode_upload(file: UploadFile) -> Any:
        name = file.filename or "upload"
        suffix = Path(name).suffix[:16]

        def decode() -> Any:
            with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
                shutil.copyfileobj(file.file, tmp, 2**20)
                tmp.flush()
                if os.path.getsize(tmp.name) == 0:
                    raise ApiError(400, f"{name}: the file is empty", "file")
                try:
                    return voiceflow.load_audio(tmp.name)
                except VoiceflowError as e:  # named as the client knows the file
                    problem = str(e).replace(f"{tmp.name}: ", "").replace(tmp.name, name)
                    raise ApiError(400, f"{name}: {problem}", "file") from None

        return await asyncio.to_thread(decode)

    async def transcribe(
        samples: Any, options: dict[str, Any], on_segment: Callable[[Segment], None] | None = None
    ) -> Transcript:
        speech = state["speech"]
        async with state["jobs"].slot():
            try:
                async with asyncio.timeout(settings.timeout_s):
                    return await asyncio.to_thread(
                        speech.recognise, samples, on_segment=on_segment, **options
                    )
            except TimeoutError:
                raise ApiError(504, f"timed out after {settings.timeout_s:g} s") from None
            except VoiceflowError as e:
                raise ApiError(400, str(e)) from None

    async def stream_transcript(samples: Any, options: dict[str, Any]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        parts: asyncio.Queue[Segment | None] = asyncio.Queue()

        def found(segment: Segment) -> None:
            loop.call_soon_threadsafe(parts.put_nowait, segment)

        async def run() -> Transcript:
            try:
                return await transcribe(samples, options, found)
            finally:
                parts.put_nowait(None)

        job = asyncio.create_task(run())
        first = True
        while (segment := await parts.get()) is not None:
            text = segment.text.strip()
            yield formats.sse(
                {"type": "transcript.text.delta", "delta": text if first else " " + text}
            )
            first = False
        try:
            transcript = await job
        except ApiError as e:
            yield formats.sse({"type": "error", "error": {"message": e.message, "code": e.code}})
            return
        yield formats.sse({"type": "transcript.text.done", "text": transcript.text})

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: Annotated[UploadFile, File()],
        model: Annotated[str | None, Form()] = None,
        language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "json",
        temperature: Annotated[float, Form()] = 0.0,
        timestamp_granularities: Annotated[  # OpenAI's form key has the brackets
            list[str] | None, Form(alias="timestamp_granularities[]")
        ] = None,
        stream: Annotated[bool, Form()] = False,
    ) -> Response:
        """Speech to text in the language spoken (OpenAI's transcription endpoint)."""
        return await speech_request(
            file,
            "transcribe",
            model,
            language,
            prompt,
            response_format,
            temperature,
            timestamp_granularities or [],
            stream,
        )

    @app.post("/v1/audio/translations")
    async def translations(
        file: Annotated[UploadFile, File()],
        model: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "json",
        temperature: Annotated[float, Form()] = 0.0,
    ) -> Response:
        """Speech in any language to English text (OpenAI's translation endpoint)."""
        return await speech_request(
            file, "translate", model, None, prompt, response_format, temperature, [], False
        )

    @app.post("/v1/images/generations")
    async def images(request: ImageRequest) -> dict[str, Any]:
        """A picture from a prompt, through the graph's image node."""
        name = node_of("image.generate")
        config = graph.nodes[name].config
        size = f"{config.width}x{config.height}"
        if request.size not in (None, "auto", size):
            raise ApiError(
                400,
                f"size {request.size!r}: this server makes {size} images "
                f"(start it with --set {name}.width=W --set {name}.height=H)",
                "size",
            )
        if request.response_format != "b64_json":
            raise ApiError(400, "response_format: only b64_json is served", "response_format")
        if request.model and request.model != config.model:
            raise ApiError(
                400, f"model {request.model!r} is not served here: use {config.model!r}", "model"
            )
        spoken = Transcript(request.prompt, "en", 1.0, 0.0, source="api")
        data = []
        async with state["jobs"].slot():
            for _ in range(request.n):
                command = Command("paint", {"prompt": request.prompt}, spoken)
                out = await state["runner"].call(name, command)
                failure = next((m for m in out if isinstance(m, Failure)), None)
                if failure is not None:
                    raise ApiError(500, failure.error, None, "image_failed")
                image = next(m for m in out if isinstance(m, ImageResult))
                data.append(
                    {
                        "b64_json": base64.b64encode(image.path.read_bytes()).decode(),
                        "revised_prompt": image.prompt,
                    }
                )
        return {"created": int(time.time()), "data": data}

    # -- voiceflow's own endpoints ---------------------------------------------------------
    # id -> a file voiceflow made or cited. The ids are random and handed out only in
    # answers to authorised requests, so an <img> or <audio> (which cannot send the key)
    # may fetch by id alone; no path in a URL ever reaches the filesystem.
    files: dict[str, Path] = {}
    ids: dict[Path, str] = {}
    run_lock = asyncio.Lock()  # one graph run at a time: a run's results must not mix

    def file_id(path: Path | str) -> str:
        path = Path(path).resolve()
        if path not in ids:
            ids[path] = secrets.token_urlsafe(18)
            files[ids[path]] = path
        return ids[path]

    def result_json(node: str, message: Any) -> dict[str, Any]:
        out = {"node": node, **jsonable(message)}
        if isinstance(message, ImageResult):
            out["url"] = f"/api/files/{file_id(message.path)}"
        if isinstance(message, Answer):
            for c, cited in zip(out["citations"], message.citations, strict=True):
                c["url"] = f"/api/files/{file_id(cited.source)}#t={cited.start:.2f},{cited.end:.2f}"
                c["label"] = cited.label()
        return out

    @app.get("/api/graph")
    async def describe_graph() -> dict[str, Any]:
        """The graph this server runs: its nodes (type, plugin) and routes."""
        registry = graph.registry
        return {
            "config": str(graph.path),
            "nodes": {
                name: {"type": spec.type, "plugin": registry.origins.get(spec.type, "")}
                for name, spec in graph.nodes.items()
            },
            "routes": [{"from": r.source, "to": r.target} for r in graph.routes],
            "plugins": registry.plugins,
        }

    @app.post("/api/run")
    async def run(
        file: Annotated[UploadFile | None, File()] = None,
        text: Annotated[str | None, Form()] = None,
    ) -> StreamingResponse:
        """Run the graph on an uploaded recording or on typed text. Its results stream as
        server-sent events as they happen, one JSON object each (node, type and the
        message's fields: transcript, command, image with its URL, answer with citations,
        failure), then ``{"type": "done"}``."""
        if (file is None) == (not text):
            raise ApiError(400, "send a recording (file) or text, one of the two", "file")
        state["jobs"].check()
        if file is not None:
            samples = await decode_upload(file)
            message: Any = AudioClip(samples, source=file.filename or "upload")
        else:
            message = Transcript(str(text).strip(), "", 0.0, 0.0, source="text")
        return StreamingResponse(graph_events(message), media_type="text/event-stream")

    async def graph_events(message: Any) -> AsyncIterator[bytes]:
        runner = state["runner"]
        results: asyncio.Queue[Any] = asyncio.Queue()

        async def work() -> None:
            try:
                async with state["jobs"].slot(), run_lock:
                    runner.on_result = results.put_nowait
                    try:
                        await runner.run([message])
                    finally:
                        runner.on_result = None
            except ApiError as e:
                results.put_nowait(e)
            finally:
                results.put_nowait(None)

        job = asyncio.create_task(work())
        while (result := await results.get()) is not None:
            if isinstance(result, ApiError):
                yield formats.sse({"type": "error", "error": result.message})
            else:
                yield formats.sse(result_json(result.node, result.message))
        await job
        yield formats.sse({"type": "done"})

    @app.post("/api/ask")
    async def ask(body: Question) -> dict[str, Any]:
        """An answer from the archive, with its citations (recording, time span, the words,
        and a URL that plays that span)."""
        if not normalize(body.question):
            raise ApiError(400, "the question has no words", "question")
        name = node_of("archive.ask")
        typed = Transcript(body.question.strip(), "en", 1.0, 0.0, source="text")
        async with state["jobs"].slot():
            out = await state["runner"].call(name, typed)
        for m in out:
            if isinstance(m, Failure):
                raise ApiError(500, m.error, None, "ask_failed")
        return result_json(name, next(m for m in out if isinstance(m, Answer)))

    @app.get("/api/stats")
    async def stats(phrase: str) -> dict[str, Any]:
        """How often a word or phrase was said in the archive: per recording, with times."""
        if not normalize(phrase):
            raise ApiError(400, "give a word or phrase to count", "phrase")
        node = state["runner"].nodes[node_of("archive.ask", "archive.store")]
        found = await asyncio.to_thread(node.archive.occurrences, phrase)
        return {
            "phrase": phrase,
            "total": sum(len(v) for v in found.values()),
            "recordings": [
                {
                    "source": Path(source).name,
                    "url": f"/api/files/{file_id(source)}",
                    "count": len(hits),
                    "times": [h.start for h in hits],
                }
                for source, hits in sorted(found.items(), key=lambda kv: -len(kv[1]))
            ],
        }

    ingests: dict[str, dict[str, Any]] = {}  # job id -> its progress
    background: set[asyncio.Task[None]] = set()  # held until done (the loop keeps weak refs)

    @app.post("/api/ingest")
    async def ingest_uploads(files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
        """Add uploaded recordings to the archive as a background job, through the graph's
        speech and archive.store nodes: the answer is the job, and ``GET /api/jobs/ID``
        tells how far it has got."""
        store = node_of("archive.store")
        folder = Path(state["runner"].nodes[store].archive.path) / "uploads"  # citations play these
        saved = []
        for f in files:
            name = re.sub(r"[^\w.-]+", "_", Path(f.filename or "upload").name)[-80:]
            saved.append(folder / f"{secrets.token_hex(4)}-{name}")
            await asyncio.to_thread(save_upload, f, saved[-1])
        job: dict[str, Any] = {"id": secrets.token_urlsafe(9), "state": "queued"}
        job |= {"files": len(saved), "done": 0, "added": 0, "errors": []}
        ingests[job["id"]] = job

        async def add(path: Path) -> None:
            try:
                samples = await asyncio.to_thread(voiceflow.load_audio, path)
            except VoiceflowError as e:
                job["errors"].append(str(e).replace(str(path), path.name))
                return
            async with state["jobs"].slot():
                job["state"] = "running"
                # English for foreign speech: the archive is searched in English
                heard = await asyncio.to_thread(state["speech"].recognise, samples, lambda t: True)
            if not heard.text:
                job["errors"].append(f"{path.name}: no speech found")
                return
            out = await state["runner"].call(store, replace(heard, source=str(path)))
            failures = [m.error for m in out if isinstance(m, Failure)]
            job["errors"] += failures
            job["added"] += not failures

        async def work() -> None:
            for path in saved:
                try:
                    await add(path)
                except Exception as e:  # one bad file must not stall the job
                    job["errors"].append(f"{path.name}: {e}")
                job["done"] += 1
            job["state"] = "done"

        task = asyncio.create_task(work())
        background.add(task)
        task.add_done_callback(background.discard)
        return job

    @app.get("/api/jobs/{key}")
    async def ingest_job(key: str) -> dict[str, Any]:
        """An ingest job's progress: files done of all, added, errors."""
        if key not in ingests:
            raise ApiError(404, "no such job")
        return ingests[key]

    @app.get("/api/files/{key}")
    async def served_file(key: str) -> FileResponse:
        """A file voiceflow made (an image) or cited (a recording), by id; range requests
        let a player seek to a citation's span."""
        path = files.get(key)
        if path is None or not path.is_file():
            raise ApiError(404, "no such file")
        return FileResponse(path)

    return app
