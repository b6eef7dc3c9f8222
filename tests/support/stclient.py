"""A light Streamlit client: one websocket speaking Streamlit's own protocol, no browser.

It does what the frontend does on the wire and nothing else: it opens `/_stcore/stream` (with
cookies, so `st.context.cookies` sees them: a `vaeviz_owner` token makes each client its own
owner), asks for script runs with `BackMsg.rerun_script` (the page, the widget states it has set,
the fragment a widget belongs to), keeps the elements the `ForwardMsg` deltas draw (by delta
path: main area 0, sidebar 1) so widgets can be found by their key and text read back, fetches
media files as a browser would, and repeats a fragment's run on the server's `auto_rerun`
interval, as the frontend's timers do (every full run clears them and sets those it draws again;
`stop_auto_rerun` ends one).

What it leaves out: rendering, JavaScript components (so an app's custom components report
nothing), and widget states it has not set itself. The frontend sends the state of every widget
on the page; this client sends only those it has changed, and the server takes the others from
the session (keyed widgets keep their values there), so the script runs the same.

Used by bench/load_test.py (`--mode sockets`) and bench/replicas.py.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

MAIN, SIDEBAR = 0, 1  # the first index of a delta path
FINISHED_OK = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


@dataclass
class Element:
    """One element the server drew: its kind (`slider`, `imgs`, `alert`, ...) and proto."""

    path: tuple[int, ...]
    kind: str
    proto: Any
    fragment_id: str
    run_id: str
    received: float = 0.0  # time.perf_counter() when its delta arrived

    @property
    def widget_id(self) -> str:
        return getattr(self.proto, "id", "")

    @property
    def text(self) -> str:
        """What a person reads in it: a heading's, alert's, markdown's or progress bar's text, a label."""
        p = self.proto
        for name in ("body", "text", "label", "message"):
            value = getattr(p, name, None)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass
class Run:
    """One script run the server made for this client: when it started and ended, and how."""

    run_id: str
    started: float
    fragment: bool
    finished: float | None = None
    status: int | None = None


class ClientError(RuntimeError):
    """The server closed the connection, or a wait timed out."""


@dataclass
class StreamlitClient:
    """One Streamlit session over one websocket. `await connect()`, then `rerun`, `until`, read `elements`."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    on_exception: Callable[[str], None] | None = None  # called with each exception box's text
    # --- state, filled from the server's messages ---
    session_id: str = ""
    pages: dict[str, Any] = field(default_factory=dict)  # page title -> AppPage
    page_hash: str = ""
    elements: dict[tuple[int, ...], Element] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    widget_states: dict[str, WidgetState] = field(default_factory=dict)  # what this client has set
    closed_by_server: bool = False
    client_errors: list[str] = field(default_factory=list)
    bytes_received: int = 0

    def __post_init__(self) -> None:
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Condition()
        self._auto: dict[str, asyncio.Task] = {}  # fragment id -> its auto-rerun timer
        self._closing = False
        self._run_order: list[str] = []
        self._current = ""  # the run the server's messages now belong to

    # --- the connection ----------------------------------------------------------------------

    async def connect(self) -> None:
        url = self.base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/_stcore/stream"
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        self._ws = await websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=self.timeout,
                                            subprotocols=["streamlit"])
        self._reader = asyncio.create_task(self._read(), name="stclient-reader")

    async def close(self) -> None:
        self._closing = True
        for task in self._auto.values():
            task.cancel()
        self._auto.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self.bytes_received += len(data)
                msg = ForwardMsg()
                try:
                    msg.ParseFromString(data)
                    self._handle(msg, time.perf_counter())
                except Exception as exc:  # a message this client misreads is its error, not the server's
                    self.client_errors.append(f"{type(exc).__name__}: {exc}")
                async with self._changed:
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self._closing:
                self.closed_by_server = True
            async with self._changed:
                self._changed.notify_all()

    # --- what the server says ----------------------------------------------------------------

    def _handle(self, msg: ForwardMsg, now: float) -> None:
        kind = msg.WhichOneof("type")
        # Only a run's first message names it; the rest belong to the latest run named.
        run_id = msg.metadata.run.script_run_id or self._current
        if run_id and run_id not in self.runs:
            self.runs[run_id] = Run(run_id, now, fragment=bool(msg.metadata.run.fragment_ids))
            self._run_order.append(run_id)
        self._current = run_id
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend drops every auto-rerun timer
                self._stop_auto(list(self._auto))
                if ns.page_script_hash != self.page_hash:
                    self.elements.clear()  # another page
                self.page_hash = ns.page_script_hash
        elif kind == "navigation":
            self.pages = {p.page_name: p for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "delta":
            delta = msg.delta
            which = delta.WhichOneof("type")
            path = tuple(msg.metadata.delta_path)
            if which == "new_element":
                el_kind = delta.new_element.WhichOneof("type")
                proto = getattr(delta.new_element, el_kind)
                self.elements[path] = Element(path, el_kind, proto, delta.fragment_id, run_id, now)
                if el_kind == "exception" and self.on_exception is not None:
                    self.on_exception(f"{proto.type}: {proto.message}")
            elif which == "add_block":
                block = delta.add_block
                self.elements[path] = Element(path, "block:" + (block.WhichOneof("type") or ""), block,
                                              delta.fragment_id, run_id, now)
        elif kind == "script_finished":
            run = self.runs.get(run_id)
            if run is not None:
                run.finished, run.status = now, msg.script_finished
                if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY and not run.fragment:
                    self._drop_stale(lambda e: e.run_id != run_id)
                elif msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    frags = set(msg.metadata.run.fragment_ids)
                    self._drop_stale(lambda e: e.fragment_id in frags and e.run_id != run_id)
        elif kind == "auto_rerun":
            self._start_auto(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_auto(list(msg.stop_auto_rerun.fragment_ids))

    def _drop_stale(self, stale: Callable[[Element], bool]) -> None:
        """What a finished run did not draw again is gone (as the frontend clears stale elements);
        so are the states of widgets no longer on the page."""
        self.elements = {p: e for p, e in self.elements.items() if not stale(e)}
        live = {e.widget_id for e in self.elements.values() if e.widget_id}
        self.widget_states = {k: v for k, v in self.widget_states.items() if k in live}

    def _start_auto(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or fragment_id in self._auto:
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._send_rerun(fragment_id=fragment_id, auto=True)

        self._auto[fragment_id] = asyncio.create_task(tick(), name=f"auto-rerun-{fragment_id[:8]}")

    def _stop_auto(self, fragment_ids: list[str]) -> None:
        for fid in fragment_ids:
            task = self._auto.pop(fid, None)
            if task is not None:
                task.cancel()

    @property
    def auto_reruns(self) -> int:
        return len(self._auto)

    # --- asking for runs -----------------------------------------------------------------------

    async def _send_rerun(self, *, page_hash: str | None = None, fragment_id: str = "", auto: bool = False,
                          triggers: list[WidgetState] = ()) -> float:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.page_script_hash = self.page_hash if page_hash is None else page_hash
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.widget_states.widgets.extend([*self.widget_states.values(), *triggers])
        sent = time.perf_counter()
        try:
            await self._ws.send(msg.SerializeToString())
        except websockets.ConnectionClosed:
            if not self._closing:
                self.closed_by_server = True
        return sent

    def mark(self) -> int:
        """A point in this client's runs: `finished_since(mark)` finds the first run after it."""
        return len(self._run_order)

    def finished_since(self, mark: int) -> Run | None:
        """The first run started after `mark` that finished well (one cut short for a rerun is skipped)."""
        for run_id in self._run_order[mark:]:
            run = self.runs[run_id]
            if run.status in FINISHED_OK:
                return run
        return None

    async def request(self, *, page: str | None = None, fragment_id: str = "",
                      triggers: list[WidgetState] = ()) -> float:
        """Ask for a run (another page's, by title; a fragment's) with the widget states set so far
        and `triggers` (sent once); returns when it was sent (time.perf_counter)."""
        page_hash = self.pages[page].page_script_hash if page is not None else None
        return await self._send_rerun(page_hash=page_hash, fragment_id=fragment_id, triggers=list(triggers))

    async def rerun(self, *, page: str | None = None, fragment_id: str = "", triggers: list[WidgetState] = (),
                    timeout: float | None = None) -> tuple[float, Run]:
        """`request` a run and wait until it has finished: (when it was sent, the run). ClientError if it
        did not finish in time."""
        mark = self.mark()
        sent = await self.request(page=page, fragment_id=fragment_id, triggers=triggers)
        run = await self.until(lambda: self.finished_since(mark), timeout, f"a run of {page or 'this page'}")
        return sent, run

    async def open(self, page: str | None = None) -> Run:
        """The first run, as a browser sends it on connecting (its URL's page: `page`, a url path)."""
        mark = self.mark()
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_name = page or ""
        await self._ws.send(msg.SerializeToString())
        return await self.until(lambda: self.finished_since(mark), None, "the first run")

    async def until(self, predicate: Callable[[], Any], timeout: float | None = None, what: str = "a condition"):
        """Wait until `predicate()` is true (checked after every message); return its value."""
        deadline = time.perf_counter() + (self.timeout if timeout is None else timeout)
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                if self.closed_by_server:
                    raise ClientError(f"the server closed the connection while waiting for {what}")
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise ClientError(f"timed out after {self.timeout if timeout is None else timeout:.0f} s "
                                      f"waiting for {what}")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

    # --- widgets -------------------------------------------------------------------------------

    def widget(self, key: str, area: int | None = None) -> Element:
        """The widget with user key `key` (its id ends in `-key`); KeyError if it is not on the page."""
        for e in self.elements.values():
            if e.widget_id.endswith(f"-{key}") and (area is None or e.path[0] == area):
                return e
        raise KeyError(f"no widget with key {key!r} on the page")

    def has_widget(self, key: str) -> bool:
        return any(e.widget_id.endswith(f"-{key}") for e in self.elements.values())

    def set_widget(self, key: str, **value) -> Element:
        """Set a widget's value for the next run, e.g. `double_array_value=[0.5]` for a slider,
        `string_value=...` for a selectbox or text input, `double_value=` for a number input."""
        element = self.widget(key)
        state = WidgetState(id=element.widget_id)
        ((name, v),) = value.items()
        if name.endswith("_array_value"):
            getattr(state, name).data.extend(v)
        else:
            setattr(state, name, v)
        self.widget_states[element.widget_id] = state
        return element

    async def click(self, key: str, timeout: float | None = None) -> tuple[float, Run]:
        """Press a button (a trigger, sent once) and wait for the run it causes."""
        element = self.widget(key)
        return await self.rerun(fragment_id=element.fragment_id, triggers=[WidgetState(id=element.widget_id,
                                                                                       trigger_value=True)],
                                timeout=timeout)

    # --- reading the page ----------------------------------------------------------------------

    def of_kind(self, kind: str, area: int | None = MAIN) -> list[Element]:
        found = [e for e in self.elements.values() if e.kind == kind and (area is None or e.path[0] == area)]
        return sorted(found, key=lambda e: e.path)

    def texts(self, kind: str, area: int | None = MAIN) -> list[str]:
        return [e.text for e in self.of_kind(kind, area)]

    def heading(self) -> Element | None:
        """The main area's first heading (the page's st.title)."""
        heads = self.of_kind("heading")
        return heads[0] if heads else None

    @property
    def title(self) -> str:
        head = self.heading()
        return head.proto.body if head is not None else ""

    def images(self, caption: str | None = None) -> list[tuple[str, float]]:
        """The main area's st.image pictures (with `caption`, if given): (url, when its delta arrived)."""
        return [(i.url, e.received) for e in self.of_kind("imgs") for i in e.proto.imgs
                if caption is None or i.caption == caption]

    def image_urls(self, caption: str | None = None) -> list[str]:
        return [url for url, _ in self.images(caption)]

    async def fetch(self, url: str) -> bytes:
        """GET a media file as the browser does for an <img> (HTTP/1.1, one connection, the client's
        cookies: a sticky load balancer needs them); its body.
        ClientError unless the server answers 200."""
        parts = urllib.parse.urlsplit(url if url.startswith("http") else self.base_url.rstrip("/") + url)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), self.timeout)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())  # a browser sends them too
            head = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            writer.write((head + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n").encode())
            data = await asyncio.wait_for(reader.read(), self.timeout)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 200 " not in status + " ":
            raise ClientError(f"GET {parts.path}: {status or 'no answer'}")
        return body
