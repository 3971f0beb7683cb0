"""Frames of the engine socket: a 4-byte little-endian length, then that many bytes of UTF-8 JSON.

Why length-prefixed JSON: a reader knows how much to read before it reads it (so it can
refuse a frame that is too large without reading or allocating it), every language has
JSON, and the messages are the typed models of :mod:`kelly.contracts`, whose JSON Schema
is published (``kelly schema protocol``).

Every way a frame can be wrong becomes one :class:`FrameError` line that says what was
wrong and where (the server sends it back as an ``Error`` message and keeps the
connection open), and carries the request's ``id`` when it could be read, so that the
client can match the error to its question.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from pydantic import BaseModel, ValidationError

from kelly.contracts import REQUESTS, RESPONSES
from kelly.errors import KellyError

#: Largest frame body either side sends or accepts (1 MiB).
MAX_FRAME_BYTES = 1 << 20
#: Size of the length prefix.
HEADER_BYTES = 4
#: Deepest nesting of arrays/objects a frame may hold. Messages are flat (an answer's state
#: is three levels deep); the limit keeps a hostile body from reaching Python's recursion limit.
MAX_FRAME_DEPTH = 16

_HEADER = struct.Struct("<I")
_JSON_KINDS = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


class FrameError(KellyError):
    """A frame that cannot be read as a message; ``id`` is the request's id when it could be recovered."""

    def __init__(self, message: str, id: int | str | None = None) -> None:  # noqa: A002 - the protocol's name
        super().__init__(message)
        self.id = id


# --------------------------------------------------------------------------- writing
def pack(body: bytes) -> bytes:
    """``body`` behind its length prefix; refuses a body over :data:`MAX_FRAME_BYTES`."""
    if len(body) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(body)} bytes is over the 1 MiB limit")
    return _HEADER.pack(len(body)) + body


def encode(message: BaseModel) -> bytes:
    """One message (a request or a response model) as a complete frame."""
    return pack(message.model_dump_json().encode("utf-8"))


def frame_length(header: bytes) -> int:
    """The body length a 4-byte prefix announces; refuses one over the limit before anything is read.

    Raises
    ------
    FrameError
        If the length is over :data:`MAX_FRAME_BYTES`.
    """
    (n,) = _HEADER.unpack(header)
    if n > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {n} bytes is over the 1 MiB limit")
    return n


# --------------------------------------------------------------------------- reading
def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a JSON number")


def _recover_id(obj: Any) -> int | str | None:
    """The ``id`` of a request body, when it is one the protocol allows (so it can be echoed)."""
    if not isinstance(obj, dict):
        return None
    rid = obj.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        return rid
    if isinstance(rid, str) and len(rid) <= 64:
        return rid
    return None


def parse_object(body: bytes) -> dict:
    """A frame body as a JSON object with a string ``type``.

    Raises
    ------
    FrameError
        Empty, not UTF-8, too deeply nested, not JSON, not an object, or no string ``type``.
    """
    if not body:
        raise FrameError("frame is empty (length 0); each frame holds one JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(f"frame is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})") from None
    from kelly.fileio import json_depth  # deferred: fileio is only needed once frames arrive

    depth = json_depth(body)
    if depth > MAX_FRAME_DEPTH:
        raise FrameError(f"frame nests {depth} levels deep (at most {MAX_FRAME_DEPTH})")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FrameError(f"frame is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, integers over 4,300 digits
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FrameError(f"frame is not JSON Kelly accepts: {first[:200]}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame is a JSON {_JSON_KINDS.get(type(obj), 'value')}, not an object")
    rid = _recover_id(obj)
    if "type" not in obj:
        raise FrameError('frame has no "type"', rid)
    if not isinstance(obj["type"], str):
        raise FrameError(f'frame\'s "type" is a JSON {_JSON_KINDS.get(type(obj["type"]), "value")}, not a string',
                         rid)
    return obj


def _shown(value: Any, limit: int = 40) -> str:
    """A value as JSON, cut to ``limit`` characters, for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _problem(err: dict, model: type[BaseModel]) -> str:
    """One pydantic error as ``field: what is wrong (got X)``."""
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else ""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    got = f" (got {_shown(err['input'])})" if "input" in err and kind not in ("missing",) else ""
    if field == "id":
        return "id: must be an integer or a string of at most 64 characters" + got
    if kind == "extra_forbidden":
        fields = ", ".join(f for f in model.model_fields if f != "type")
        return f"{field}: unknown field ({model.__name__} has: {fields})"
    if kind == "missing":
        return f"{field}: is required"
    bounds = {"less_than_equal": ("<=", "le"), "greater_than_equal": (">=", "ge"),
              "less_than": ("<", "lt"), "greater_than": (">", "gt")}
    if kind in bounds:
        op, key = bounds[kind]
        limit = ctx.get(key)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"{field}: must be {op} {limit}{got}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{field}: must not be empty"
    if kind == "string_too_short":
        return f"{field}: must be at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        n = len(err["input"]) if isinstance(err.get("input"), str) else "more"
        return f"{field}: must be at most {ctx.get('max_length')} characters (got {n})"
    simple = {"float": "a number", "int": "an integer", "bool": "true or false", "string": "a string"}
    for prefix, what in simple.items():
        if kind.startswith(prefix + "_"):
            return f"{field}: must be {what}{got}"
    msg = str(err.get("msg", "invalid")).replace("Input should be", "must be")
    return f"{field}: {msg}{got}"


def summarise(exc: ValidationError, model: type[BaseModel]) -> str:
    """A pydantic error as one line: ``SetEmotion.valence: must be <= 1 (got 3)`` (and how many more)."""
    errors = exc.errors()
    # a union (the id) reports once per member: keep one line per field
    seen, lines = set(), []
    for err in errors:
        key = (err.get("loc") or ("",))[0]
        if key not in seen:
            seen.add(key)
            lines.append(err)
    line = f"{model.__name__}.{_problem(lines[0], model)}"
    if len(lines) > 1:
        more = [str((err.get("loc") or ("?",))[0]) for err in lines[1:]]
        line += f" (also wrong: {', '.join(more)})"
    return " ".join(line.split())


def _validate(obj: dict, table: dict[str, type[BaseModel]], what: str) -> BaseModel:
    kind = obj["type"]
    model = table.get(kind)
    if model is None:
        name = kind if len(kind) <= 60 else kind[:59] + "…"
        raise FrameError(f"unknown {what} type {name!r}; {what}s are: {', '.join(table)}",
                         _recover_id(obj))
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise FrameError(summarise(exc, model), _recover_id(obj)) from None


def decode_request(body: bytes) -> BaseModel:
    """A frame body as one of :data:`kelly.contracts.REQUESTS`.

    Raises
    ------
    FrameError
        With a one-line message and the request's id when it could be read.
    """
    return _validate(parse_object(body), REQUESTS, "request")


def decode_response(body: bytes) -> BaseModel:
    """A frame body as one of :data:`kelly.contracts.RESPONSES` (the client's side)."""
    return _validate(parse_object(body), RESPONSES, "response")
