"""Frames: the round trip of every message, and one clear line for every way a frame can be wrong."""

from __future__ import annotations

import json
import struct

import pytest

from kelly.contracts import (REQUESTS, RESPONSES, EngineState, Error, GenerateMIDI, GetState, LiveEmotion, LoadModel,
                             MIDIGenerated, ModelLoaded, Ok, SetEmotion, SetModelEnabled, SetText, Shutdown, State,
                             Subscribe)
from kelly.ipc import framing
from kelly.ipc.framing import MAX_FRAME_BYTES, FrameError, decode_request, decode_response, encode, frame_length

STATE = EngineState(running=True, seq=1, time_s=0.5, clock="internal", playing=False, bar=0, tempo_bpm=100.0,
                    time_signature="3/4", emotion=LiveEmotion(valence=0.1, arousal=0.2, dominance=0.3, confidence=1.0),
                    sample_rate=44100, block=512, latency_samples=0, blocks=0, overruns=0, dropped_frames=0,
                    inferences=0, notes_sounding=0)

REQUEST_EXAMPLES = [LoadModel(path="harmonypredictor.npz", id=1), SetEmotion(valence=-0.5, arousal=0.25, id="a"),
                    SetText(text="I miss her — ça va", id=3), GenerateMIDI(bars=16), GetState(id=0),
                    SetModelEnabled(model="groovepredictor", enabled=False), Subscribe(interval_ms=50), Shutdown()]
RESPONSE_EXAMPLES = [Ok(id=1), Ok(message="read as grief"), ModelLoaded(name="harmonypredictor", id="x"),
                     MIDIGenerated(path="/tmp/a.mid", bars=8), State(state=STATE, id=9), Error(message="no")]


def _error_of(body: bytes) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode_request(body)
    assert "\n" not in str(info.value)
    return info.value


def test_every_request_and_response_round_trips():
    assert {type(m).__name__ for m in REQUEST_EXAMPLES} == set(REQUESTS)
    assert {type(m).__name__ for m in RESPONSE_EXAMPLES} == set(RESPONSES)
    for msg in REQUEST_EXAMPLES:
        frame = encode(msg)
        (n,) = struct.unpack("<I", frame[:4])
        assert n == len(frame) - 4
        assert json.loads(frame[4:])["type"] == msg.type
        assert decode_request(frame[4:]) == msg
    for msg in RESPONSE_EXAMPLES:
        assert decode_response(encode(msg)[4:]) == msg


def test_layout_is_little_endian_length_then_utf8_json():
    frame = encode(GetState(id=7))
    assert frame[:4] == len(frame[4:]).to_bytes(4, "little")
    assert json.loads(frame[4:].decode("utf-8")) == {"type": "GetState", "id": 7}


def test_length_limit_is_checked_from_the_prefix_alone():
    assert frame_length(struct.pack("<I", MAX_FRAME_BYTES)) == MAX_FRAME_BYTES
    with pytest.raises(FrameError, match=r"frame of 1048577 bytes is over the 1 MiB limit"):
        frame_length(struct.pack("<I", MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameError, match="over the 1 MiB limit"):
        encode(SetText(text="x" * 10_000, id="y" * 64).model_copy(update={"text": "é" * (MAX_FRAME_BYTES // 2)}))


@pytest.mark.parametrize("body, message", [
    (b"", "frame is empty (length 0)"),
    (b'{"type": "GetState", "x": "\xff"}', "frame is not UTF-8 (byte 0xff at offset 27)"),
    (b'{"type": "GetState",', "frame is not JSON: Expecting property name enclosed in double quotes at line 1 column 21"),
    (b"[1, 2]", "frame is a JSON array, not an object"),
    (b"3.5", "frame is a JSON number, not an object"),
    (b'"GetState"', "frame is a JSON string, not an object"),
    (b"null", "frame is a JSON null, not an object"),
    (b'{"id": 4}', 'frame has no "type"'),
    (b'{"type": 4}', 'frame\'s "type" is a JSON number, not a string'),
    (b'{"type": "Foo"}', "unknown request type 'Foo'; requests are: LoadModel, SetEmotion, SetText, GenerateMIDI, "
                         "GetState, SetModelEnabled, Subscribe, Shutdown"),
    (b'{"type": "Ok"}', "unknown request type 'Ok'"),
    (b'{"type": "SetEmotion", "valence": 3, "arousal": 0.5}', "SetEmotion.valence: must be <= 1 (got 3)"),
    (b'{"type": "SetEmotion", "valence": 0, "arousal": -1}', "SetEmotion.arousal: must be >= 0 (got -1)"),
    (b'{"type": "SetEmotion", "arousal": 0.5}', "SetEmotion.valence: is required"),
    (b'{"type": "SetEmotion", "valence": "high", "arousal": 0.5}', 'SetEmotion.valence: must be a number (got "high")'),
    (b'{"type": "SetEmotion", "valence": 3}', "SetEmotion.valence: must be <= 1 (got 3) (also wrong: arousal)"),
    (b'{"type": "GetState", "colour": "red"}', "GetState.colour: unknown field (GetState has: id)"),
    (b'{"type": "GenerateMIDI", "bars": 1.5}', "GenerateMIDI.bars: must be an integer (got 1.5)"),
    (b'{"type": "GenerateMIDI", "bars": 0}', "GenerateMIDI.bars: must be >= 1 (got 0)"),
    (b'{"type": "SetText", "text": ""}', "SetText.text: must not be empty"),
    (b'{"type": "SetModelEnabled", "model": "x", "enabled": "maybe"}',
     'SetModelEnabled.enabled: must be true or false (got "maybe")'),
    (b'{"type": "GetState", "id": [1]}', "GetState.id: must be an integer or a string of at most 64 characters"),
    (b'{"type": "GetState", "x": NaN}', "frame is not JSON Kelly accepts: NaN is not a JSON number"),
])
def test_bad_frames_are_one_specific_line(body, message):
    assert str(_error_of(body)).startswith(message)


def test_long_text_is_counted_not_echoed():
    err = _error_of(json.dumps({"type": "SetText", "text": "x" * 10_001}).encode())
    assert str(err) == "SetText.text: must be at most 10000 characters (got 10001)"


def test_deep_nesting_is_refused_before_parsing():
    body = b'{"type": "GetState", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert str(_error_of(body)) == f"frame nests 100001 levels deep (at most {framing.MAX_FRAME_DEPTH})"


def test_huge_integer_is_refused():
    body = b'{"type": "GenerateMIDI", "bars": ' + b"9" * 5000 + b"}"
    assert str(_error_of(body)).startswith("frame is not JSON Kelly accepts:")


@pytest.mark.parametrize("rid", [5, "abc", "x" * 64])
def test_the_id_is_recovered_for_the_error(rid):
    assert _error_of(json.dumps({"type": "SetEmotion", "valence": 9, "arousal": 0, "id": rid}).encode()).id == rid
    assert _error_of(json.dumps({"type": "Nope", "id": rid}).encode()).id == rid
    assert _error_of(json.dumps({"id": rid}).encode()).id == rid


@pytest.mark.parametrize("rid", [True, 1.5, "x" * 65, [1], None])
def test_an_id_the_protocol_does_not_allow_is_not_echoed(rid):
    assert _error_of(json.dumps({"type": "Nope", "id": rid}).encode()).id is None


def test_a_response_type_is_not_a_request():
    with pytest.raises(FrameError, match="unknown response type 'GetState'; responses are: Ok, ModelLoaded"):
        decode_response(encode(GetState())[4:])
