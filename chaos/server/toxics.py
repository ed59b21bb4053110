"""The toxics: what each one does to the bytes of one direction of one connection.

A toxic is a small class holding its attributes (shared by every connection of the
proxy, so updates apply live) with an async ``pipe(stage)`` that reads chunks from its
stage and passes, delays, slices, drops or ends them, as Toxiproxy 2.x's toxics do:

========== ======================================= ===========================================
type       attributes                              effect
========== ======================================= ===========================================
latency    latency, jitter (ms)                    each chunk released at read time + latency ± jitter
bandwidth  rate (KB/s, KB = 1000 bytes)            at most ``rate`` KB/s; 0 lets nothing through
slow_close delay (ms)                              the close is held back ``delay`` ms
timeout    timeout (ms)                            drops all data; closes after ``timeout`` ms idle (0: never)
reset_peer timeout (ms)                            on the first chunk or EOF: drop, wait, close (RST)
slicer     average_size, size_variation, delay µs  chunks cut into slices ``delay`` µs apart
limit_data bytes                                   passes the first ``bytes`` bytes, then closes
noop                                               passes everything
========== ======================================= ===========================================

The stage API a pipe uses (see :class:`chaos.server.proxy.Stage`): ``await recv()``
(a chunk, or None at end of stream; the chunk is then *held* by the stage),
``emit()`` / ``emit_part(n)`` / ``discard()`` to release the held chunk, ``close()``
to end the stream. When a toxic is interrupted (updated or removed) the stage
passes on whatever it still holds, so no data are lost, as in Toxiproxy.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any, ClassVar

from saga_harness.chaos.server.codec import decode_body, decode_fields, go_float32, json_kind
from saga_harness.chaos.server.errors import BAD_REQUEST_BODY, INVALID_STREAM, INVALID_TOXIC_TYPE, TOXIC_ALREADY_EXISTS

if TYPE_CHECKING:
    from saga_harness.chaos.server.proxy import Stage

UPSTREAM, DOWNSTREAM = "upstream", "downstream"


class Toxic:
    """A toxic of a proxy: name, direction, toxicity and attributes; ``pipe`` is its effect."""

    type: ClassVar[str] = ""
    go_name: ClassVar[str] = ""  # the Go struct, named in type errors as Toxiproxy does
    # Attribute name -> Go type, in Toxiproxy's JSON order; every one is always present.
    fields: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, stream: str, toxicity: float, attributes: dict[str, int]) -> None:
        self.name = name
        self.stream = stream  # as the client spelt it; the direction is its lower case
        self.direction = stream.lower()
        self.toxicity = toxicity
        self.attributes = {field: int(attributes.get(field, 0)) for field in self.fields}

    def to_json(self) -> dict[str, Any]:
        """The toxic as Toxiproxy shows it (field order included)."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": go_float32(self.toxicity),
        }

    @classmethod
    def check(cls, attributes: dict[str, int]) -> None:
        """Refuse attribute values that would break the toxic (400)."""

    def new_state(self) -> Any:
        """Per-connection state kept across restarts of the toxic (limit_data's byte count)."""
        return None

    def cleanup(self, stage: Stage) -> bool:
        """Called when the toxic is removed from an open connection; True if it ended the stream."""
        return False

    async def pipe(self, stage: Stage) -> None:
        """Pass every chunk on unchanged (the noop toxic, and a toxic that lost its toxicity draw)."""
        await noop_pipe(stage)


async def noop_pipe(stage: Stage) -> None:
    """Pass every chunk on, then the end of the stream."""
    while True:
        if await stage.recv() is None:
            stage.close()
            return
        stage.emit()


class NoopToxic(Toxic):
    type = "noop"
    go_name = "NoopToxic"


class LatencyToxic(Toxic):
    type = "latency"
    go_name = "LatencyToxic"
    fields = {"latency": "int64", "jitter": "int64"}

    async def pipe(self, stage: Stage) -> None:
        attrs = self.attributes
        while True:
            chunk = await stage.recv()
            if chunk is None:
                stage.close()
                return
            delay = attrs["latency"]
            jitter = attrs["jitter"]
            if jitter > 0:
                delay += random.randrange(2 * jitter) - jitter
            # Counted from when the chunk was read, so a queue behind a slow chunk does not add up.
            sleep = delay / 1000 - (time.monotonic() - chunk.ts)
            if sleep > 0:
                await asyncio.sleep(sleep)
            # Chained latency toxics then add up, as in Toxiproxy.
            chunk.ts += sleep
            stage.emit()


class BandwidthToxic(Toxic):
    type = "bandwidth"
    go_name = "BandwidthToxic"
    fields = {"rate": "int64"}

    async def pipe(self, stage: Stage) -> None:
        debt = 0.0  # seconds owed for bytes already passed (negative: credit from oversleeping)
        while True:
            chunk = await stage.recv()
            if chunk is None:
                stage.close()
                return
            rate = self.attributes["rate"]  # KB/s = bytes per ms
            if rate <= 0:
                # Toxiproxy lets nothing through at rate 0; an update or removal frees the chunk.
                await asyncio.Future()
            debt += len(chunk.data) / (rate * 1000)
            piece = rate * 100  # what 100 ms allow: big chunks go out in 100 ms steps
            while len(chunk.data) > piece:
                await asyncio.sleep(0.1)
                stage.emit_part(piece)
                debt -= 0.1
            start = time.monotonic()
            if debt > 0:
                await asyncio.sleep(debt)
            debt -= time.monotonic() - start
            stage.emit()


class SlowCloseToxic(Toxic):
    type = "slow_close"
    go_name = "SlowCloseToxic"
    fields = {"delay": "int64"}

    async def pipe(self, stage: Stage) -> None:
        while True:
            if await stage.recv() is None:
                # Held as the end of stream: an interrupt passes the close on at once.
                await asyncio.sleep(max(self.attributes["delay"], 0) / 1000)
                stage.close()
                return
            stage.emit()


class TimeoutToxic(Toxic):
    type = "timeout"
    go_name = "TimeoutToxic"
    fields = {"timeout": "int64"}

    async def pipe(self, stage: Stage) -> None:
        timeout = self.attributes["timeout"] / 1000
        while True:
            # The idle timer restarts on every chunk; 0 waits forever.
            if timeout > 0 and not await stage.wait_input(timeout):
                stage.close()
                return
            if await stage.recv() is None:
                stage.close()
                return
            stage.discard()

    def cleanup(self, stage: Stage) -> bool:
        # Removing a timeout toxic closes the connections it held, as Toxiproxy does.
        stage.close()
        return True


class ResetPeerToxic(Toxic):
    type = "reset_peer"
    go_name = "ResetToxic"
    fields = {"timeout": "int64"}

    async def pipe(self, stage: Stage) -> None:
        await stage.recv()  # the first chunk or the end of stream
        stage.discard()
        try:
            await asyncio.sleep(max(self.attributes["timeout"], 0) / 1000)
        finally:
            # The sockets got SO_LINGER 0 at accept if this toxic existed then: close sends RST.
            stage.close()


class SlicerToxic(Toxic):
    type = "slicer"
    go_name = "SlicerToxic"
    fields = {"average_size": "int", "size_variation": "int", "delay": "int"}

    @classmethod
    def check(cls, attributes: dict[str, int]) -> None:
        # Toxiproxy itself crashes (endless recursion) on these; refuse them instead.
        if attributes.get("average_size", 0) < 1:
            raise BAD_REQUEST_BODY.joined("slicer average_size must be at least 1 (0 would never end a slice)")
        if attributes.get("size_variation", 0) < 0:
            raise BAD_REQUEST_BODY.joined("slicer size_variation must not be negative")

    def slices(self, size: int) -> list[int]:
        """The end offsets of the slices of a ``size``-byte chunk: halves until near ``average_size``."""
        average = self.attributes["average_size"]
        variation = self.attributes["size_variation"]
        ends: list[int] = []
        todo = [(0, size)]
        while todo:
            start, end = todo.pop()
            if (end - start) - average <= variation:
                ends.append(end)
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += random.randrange(2 * variation) - variation
            mid = min(max(mid, start + 1), end - 1)  # Toxiproxy can cut outside the chunk and crash
            todo.append((mid, end))
            todo.append((start, mid))
        return ends

    async def pipe(self, stage: Stage) -> None:
        while True:
            chunk = await stage.recv()
            if chunk is None:
                stage.close()
                return
            delay = max(self.attributes["delay"], 0) / 1_000_000  # microseconds
            start = 0
            for end in self.slices(len(chunk.data)):
                stage.emit_part(end - start)
                start = end
                await asyncio.sleep(delay)
            stage.discard()


class LimitDataToxic(Toxic):
    type = "limit_data"
    go_name = "LimitDataToxic"
    fields = {"bytes": "int64"}

    def new_state(self) -> Any:
        return [0]  # bytes passed on this connection, kept when the toxic is updated

    async def pipe(self, stage: Stage) -> None:
        passed = stage.state
        while True:
            chunk = await stage.recv()
            if chunk is None:
                stage.close()
                return
            remaining = max(self.attributes["bytes"] - passed[0], 0)
            n = min(remaining, len(chunk.data))
            if n:
                stage.emit_part(n)
                passed[0] += n
            stage.discard()
            if self.attributes["bytes"] - passed[0] <= 0:
                stage.close()
                return


TOXICS: dict[str, type[Toxic]] = {
    cls.type: cls
    for cls in (
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
        NoopToxic,
    )
}

_WRAPPER = {"attributes": "raw", "name": "string", "type": "string", "stream": "string", "toxicity": "float32"}


def parse_new_toxic(body: bytes, exists: Any) -> Toxic:
    """A toxic from a create request, checked in Toxiproxy's order; ``exists(name)`` spots duplicates."""
    obj = decode_body(body)
    wrapper = decode_fields(obj, _WRAPPER, "ToxicWrapper", "toxics.ToxicWrapper")
    raw = wrapper.get("attributes")
    if raw is not None and not isinstance(raw, dict):
        raise BAD_REQUEST_BODY.joined(
            f"json: cannot unmarshal {json_kind(raw)} into Go struct field ToxicWrapper.attributes "
            "of type toxics.NoopToxic"
        )
    stream = wrapper.get("stream", DOWNSTREAM)
    if stream.lower() not in (UPSTREAM, DOWNSTREAM):
        raise INVALID_STREAM
    kind = wrapper.get("type", "")
    name = wrapper.get("name") or f"{kind}_{stream}"
    cls = TOXICS.get(kind)
    if cls is None:
        raise INVALID_TOXIC_TYPE
    if exists(name):
        raise TOXIC_ALREADY_EXISTS
    attributes = decode_fields(raw, cls.fields, f"{cls.go_name}.attributes", f"toxics.{cls.go_name}")
    cls.check({field: attributes.get(field, 0) for field in cls.fields})
    return cls(name, stream, wrapper.get("toxicity", 1.0), attributes)


def parse_toxic_update(toxic: Toxic, body: bytes) -> tuple[dict[str, int], float]:
    """The merged attributes and the toxicity of an update request (name, type, stream stay)."""
    obj = decode_body(body)
    update = decode_fields(obj, {"attributes": "raw", "toxicity": "float32"}, "struct", "struct")
    raw = update.get("attributes")
    if raw is not None and not isinstance(raw, dict):
        raise BAD_REQUEST_BODY.joined(
            f"json: cannot unmarshal {json_kind(raw)} into Go struct field .attributes of type toxics.{toxic.go_name}"
        )
    attributes = {**toxic.attributes, **decode_fields(raw, toxic.fields, f"{toxic.go_name}.attributes", "")}
    toxic.check(attributes)
    return attributes, update.get("toxicity", toxic.toxicity)
