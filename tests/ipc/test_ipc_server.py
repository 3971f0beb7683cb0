"""The server: every request answered, bad frames answered and survived, slow calls isolated, clean stops."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from kelly.contracts import (EngineState, Error, GenerateMIDI, GetState, LoadModel, MIDIGenerated, ModelLoaded, Ok,
                             SetEmotion, SetModelEnabled, SetText, Shutdown, State, Subscribe)
from kelly.ipc.client import EngineError, KellyClient
from kelly.ipc.framing import decode_response, encode
from kelly.ipc.server import EngineControl, EngineServer

from _ipc_helpers import FakeEngine, frame, raw_connect, read_frame


def _ipc_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kelly-ipc-") and t.name != "kelly-ipc-accept"]


def _wait_for(cond, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _ask(s: socket.socket, body: bytes):
    s.sendall(frame(body))
    return decode_response(read_frame(s))


def test_the_fake_engine_is_an_engine_control(engine):
    assert isinstance(engine, EngineControl)


def test_every_request_type_is_answered(server, engine, sock_path):
    with KellyClient(sock_path) as c:
        assert isinstance(c.request(GetState(id=1)), State)
        answer = c.request(SetEmotion(valence=-0.4, arousal=0.6, dominance=0.2, id="e"))
        assert answer == Ok(id="e") and engine.emotion == (-0.4, 0.6, 0.2)
        assert c.request(SetText(text="I miss her", id=2)) == Ok(id=2, message="read as grief")
        assert c.request(SetText(text="fine", id=3)) == Ok(id=3, message=None)
        gen = c.request(GenerateMIDI(bars=4, id=4))
        assert isinstance(gen, MIDIGenerated) and gen.bars == 4 and gen.path.endswith("live-4.mid") and gen.id == 4
        assert c.request(LoadModel(path="harmonypredictor.npz", id=5)) == ModelLoaded(id=5, name="harmonypredictor")
        assert c.request(SetModelEnabled(model="groovepredictor", enabled=False, id=6)) == Ok(id=6)
        assert engine.enabled["groovepredictor"] is False
        state = c.request(GetState(id=7))
        assert state.id == 7 and state.state.models["groovepredictor"].enabled is False
        assert state.state.seq == engine.seq == 5
        # the convenience methods say the same
        assert isinstance(c.state(), EngineState)
        assert c.load_model("melodytransformer.json") == "melodytransformer"
        assert c.generate(2).endswith("live-2.mid")
        c.set_model_enabled("groovepredictor", True)
        c.set_emotion(0.1, 0.2)
        assert engine.emotion == (0.1, 0.2, 0.5)
        assert c.set_text("I miss him") == "read as grief"


def test_engine_errors_are_answered_and_the_server_goes_on(server, sock_path, caplog):
    with KellyClient(sock_path) as c:
        answer = c.request(LoadModel(path="../../etc/passwd", id=11))
        assert answer == Error(id=11, message="model path ../../etc/passwd is outside the models folder")
        with pytest.raises(EngineError, match="unknown network 'nope'"):
            c.set_model_enabled("nope", True)
        with caplog.at_level("ERROR", logger="kelly.ipc"):
            answer = c.request(SetText(text="boom", id=12))
        assert answer == Error(id=12, message="internal error in SetText: RuntimeError: the text reader fell over")
        # where it failed is logged (type and frames), not what it said: a message may quote the person's text
        assert "internal error in SetText: RuntimeError at " in caplog.text
        assert "the text reader fell over" not in caplog.text
        assert c.state().running


BAD_FRAMES = [
    (b'{"type": "GetState"', "frame is not JSON"),
    (b'{"type": "Launch", "id": 41}', "unknown request type 'Launch'"),
    (b'{"type": "SetEmotion", "valence": 2, "arousal": 0, "id": 42}', "SetEmotion.valence: must be <= 1 (got 2)"),
    (b'{"type": "GetState", "x": "\xc3\x28"}', "frame is not UTF-8 (byte 0xc3 at offset 27)"),
    (b"[]", "frame is a JSON array, not an object"),
    (b'{"id": 43}', 'frame has no "type"'),
    (b"", "frame is empty"),
    (b'{"type": "GetState", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "frame nests 5001 levels deep"),
]


def test_bad_frames_get_an_error_and_the_connection_stays(server, sock_path):
    with raw_connect(sock_path) as s:
        for body, message in BAD_FRAMES:
            answer = _ask(s, body)
            assert isinstance(answer, Error) and answer.message.startswith(message), answer
            wanted = json.loads(body).get("id") if body.startswith(b"{") and b"\xc3" not in body and \
                b"[[" not in body and body.endswith(b"}") else None
            assert answer.id == wanted
            assert isinstance(_ask(s, b'{"type": "GetState", "id": "after"}'), State)


def test_frames_split_anyhow_and_pipelined_are_answered_in_order(server, sock_path):
    stream = b"".join(encode(GetState(id=i)) for i in range(50)) + b"".join(
        encode(SetEmotion(valence=0, arousal=0, id=100 + i)) for i in range(50))
    ids = []
    with raw_connect(sock_path) as s:
        # answers are read while we send: a client that never reads fills the socket buffers and stalls both ends
        reader = threading.Thread(target=lambda: ids.extend(decode_response(read_frame(s)).id for _ in range(100)))
        reader.start()
        for i in range(0, len(stream), 7):  # 7-byte pieces: prefixes and bodies cut everywhere
            s.sendall(stream[i:i + 7])
        reader.join(5)
    assert ids == list(range(50)) + list(range(100, 150))


def test_an_oversized_prefix_is_refused_and_closed_without_reading_the_body(server, sock_path):
    with raw_connect(sock_path) as s:
        s.sendall(struct.pack("<I", 0xFFFFFFFF) + b"x" * 1000)
        answer = decode_response(read_frame(s))
        assert answer.message.startswith("frame of 4294967295 bytes is over the 1 MiB limit")
        try:
            assert read_frame(s) is None  # closed
        except ConnectionResetError:
            pass  # closed with our unread bytes in its buffer: also closed
    with raw_connect(sock_path) as s:
        assert isinstance(_ask(s, encode(GetState())[4:]), State)


def test_a_full_size_frame_is_read(server, sock_path):
    body = json.dumps({"type": "SetText", "text": "a" * 100, "pad": " " * 10}).encode()
    body = body[:-1] + b" " * (1_048_576 - len(body)) + b"}"
    assert len(body) == 1_048_576
    with raw_connect(sock_path) as s:
        answer = _ask(s, body)
        assert answer.message.startswith("SetText.pad: unknown field")


@pytest.mark.parametrize("leftover", [b"\x10", b"\x10\x00\x00\x00", b'\x20\x00\x00\x00{"type": "Get'])
def test_a_client_vanishing_mid_frame_costs_nothing(server, sock_path, leftover):
    before = set(_ipc_threads())  # another test's server may still be finishing a slow call
    for _ in range(20):
        s = raw_connect(sock_path)
        s.sendall(leftover)
        s.close()
    assert _wait_for(lambda: server.clients == 0)
    assert _wait_for(lambda: not set(_ipc_threads()) - before)
    with KellyClient(sock_path) as c:
        assert c.state().running


def test_a_client_that_sends_and_vanishes_before_its_answer(server, engine, sock_path):
    engine.generate_seconds = 0.3
    s = raw_connect(sock_path)
    s.sendall(encode(GenerateMIDI(bars=1)))
    s.close()
    time.sleep(0.4)
    assert _wait_for(lambda: server.clients == 0)
    with KellyClient(sock_path) as c:
        assert c.state().running


def test_a_slow_call_does_not_stall_other_clients(server, engine, sock_path):
    engine.generate_seconds = 3.0
    slow = KellyClient(sock_path)
    done = threading.Event()

    def generate():
        slow.generate(1)
        done.set()

    t = threading.Thread(target=generate)
    t.start()
    time.sleep(0.05)
    with KellyClient(sock_path) as c:
        start = time.monotonic()
        for _ in range(20):
            c.state()
        # all twenty answered while the 3 s call still runs (generous bound: CI machines are shared)
        assert time.monotonic() - start < 2.0
        assert not done.is_set()
    t.join(5)
    assert done.is_set()
    slow.close()


def test_too_many_clients_are_told_and_closed(engine, sock_path):
    with EngineServer(engine, sock_path, max_clients=2) as server:
        a, b = KellyClient(sock_path), KellyClient(sock_path)
        assert a.state() and b.state()
        c = KellyClient(sock_path)
        with pytest.raises(EngineError, match="too many clients: the engine serves at most 2 at once"):
            c.state()
        b.close()
        assert _wait_for(lambda: server.clients == 1)
        with KellyClient(sock_path) as d:
            assert d.state().running
        a.close()


def test_subscribe_delivers_state_frames_until_the_client_leaves(server, engine, sock_path):
    with raw_connect(sock_path) as s:
        s.sendall(encode(Subscribe(interval_ms=20, id="sub")))
        first = decode_response(read_frame(s))
        assert isinstance(first, Ok) and first.id == "sub"
        start = time.monotonic()
        frames = [decode_response(read_frame(s)) for _ in range(6)]
        elapsed = time.monotonic() - start
        assert all(isinstance(f, State) and f.id == "sub" for f in frames)
        assert 0.06 < elapsed < 2.0  # paced, not a burst
        # the connection still takes requests; the answer is among the stream, by its id
        s.sendall(encode(SetEmotion(valence=0.9, arousal=0.1, id="set")))
        seen = [decode_response(read_frame(s)) for _ in range(4)]
        assert Ok(id="set") in seen
        assert _wait_for(lambda: engine.emotion == (0.9, 0.1, 0.5))
    assert _wait_for(lambda: server.clients == 0)


def test_client_subscribe_iterates_states(server, engine, sock_path):
    with KellyClient(sock_path) as c:
        stream = c.subscribe(10)
        seqs = []
        for state in stream:
            seqs.append(state.seq)
            if len(seqs) == 3:
                c.set_emotion(0.5, 0.5)  # the client itself stays usable meanwhile
            if state.seq == 1 or len(seqs) == 500:
                break
        stream.close()
    assert seqs[:3] == [0, 0, 0] and seqs[-1] == 1


def test_shutdown_stops_the_server_and_calls_the_engine(engine, sock_path):
    server = EngineServer(engine, sock_path).start()
    idle = raw_connect(sock_path)  # an idle client must not hold the stop up
    with KellyClient(sock_path) as c:
        c.shutdown()
    assert server.wait(3.0)
    assert engine.shutdowns == 1 and not server.running
    assert not sock_path.exists()
    assert read_frame(idle) is None
    idle.close()
    with pytest.raises(Exception, match="no kelly engine is listening at"):
        KellyClient(sock_path)


def test_stop_returns_quickly_with_idle_and_busy_clients(engine, sock_path):
    engine.generate_seconds = 3.0
    server = EngineServer(engine, sock_path).start()
    idle = [raw_connect(sock_path) for _ in range(10)]
    busy = raw_connect(sock_path)
    busy.sendall(encode(GenerateMIDI(bars=1)))
    half = raw_connect(sock_path)
    half.sendall(b"\x40\x00\x00\x00{")
    time.sleep(0.1)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3.0
    assert not sock_path.exists() and not sock_path.with_name("engine.sock.lock").exists()
    for s in idle + [busy, half]:
        s.close()
    server.stop()  # twice is fine


def test_serve_forever_returns_after_shutdown(engine, sock_path):
    server = EngineServer(engine, sock_path)
    t = threading.Thread(target=server.serve_forever)
    t.start()
    assert _wait_for(lambda: server.running)
    with KellyClient(sock_path) as c:
        c.shutdown()
    t.join(3.0)
    assert not t.is_alive() and engine.shutdowns == 1


def test_a_server_starts_once(server):
    with pytest.raises(Exception, match="already started"):
        server.start()


def test_a_state_the_engine_gets_wrong_is_an_internal_error(sock_path, short_tmp):
    class Broken(FakeEngine):
        def get_state(self):
            return {"running": "very"}

    with EngineServer(Broken(short_tmp), sock_path), KellyClient(sock_path) as c:
        answer = c.request(GetState(id=1))
        assert isinstance(answer, Error) and answer.message.startswith("internal error in GetState: ValidationError")
        assert c.request(Shutdown(id=2)) == Ok(id=2, message="engine stopping")
