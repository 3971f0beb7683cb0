"""kelly.realtime.audio_in: blocks from sound files and (faked) sound cards, and --audio-in."""

from __future__ import annotations

import os
import sys
import threading
import time
import types

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from kelly.emotion.audio import load_audio  # noqa: E402
from kelly.errors import FileFormatError, InputError, KellyError  # noqa: E402
from kelly.realtime import audio_in  # noqa: E402
from kelly.realtime.audio_in import (NO_DEVICE, DeviceBlockSource, WavBlockSource,  # noqa: E402
                                     parse_audio_in)


def tone(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    cols = [0.5 * np.sin(2 * np.pi * (220.0 * (c + 1)) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write(path, data, sr, **kw):
    sf.write(str(path), data, sr, **kw)
    return path


# -- files -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels, sr, subtype", [(1, 48000, "PCM_16"), (2, 44100, "FLOAT"), (3, 22050, "PCM_24")])
def test_blocks_are_the_mono_file_zero_padded(tmp_path, channels, sr, subtype):
    data = tone(sr, 1.3, channels)
    path = write(tmp_path / "a.wav", data, sr, subtype=subtype)
    src = WavBlockSource(path, 512)
    n = len(data)
    assert (src.sr, src.channels, src.frames, src.block) == (sr, channels, n, 512)
    assert src.duration == pytest.approx(1.3, abs=1e-4) and src.n_blocks == -(-n // 512) and src.format == "WAV"
    blocks = list(src)
    assert len(blocks) == src.n_blocks
    assert all(b.shape == (512,) and b.dtype == np.float32 for b in blocks)
    assert blocks[0] is not blocks[1]  # each block is its own array
    joined = np.concatenate(blocks)
    want, want_sr = load_audio(path, sr=None)
    assert want_sr == sr
    assert np.array_equal(joined[:n], want)  # the same mono mix as load_audio
    assert not joined[n:].any()  # the last block is padded with zeros
    assert np.array_equal(np.concatenate(list(src)), joined)  # iterating again starts again


def test_flac_and_a_file_of_whole_blocks(tmp_path):
    data = tone(16000, 1.024)  # 16384 samples = 32 blocks of 512
    path = write(tmp_path / "a.flac", data, 16000)
    src = WavBlockSource(path)
    blocks = list(src)
    assert len(blocks) == 32 and src.format == "FLAC"
    np.testing.assert_allclose(np.concatenate(blocks), data[:, 0], atol=1e-4)


def _same_error(path, **kw):
    """WavBlockSource fails (when made or while read) exactly as load_audio does."""
    with pytest.raises(KellyError) as want:
        load_audio(path, sr=None, **kw)
    with pytest.raises(KellyError) as got:
        for _ in WavBlockSource(path, 512, **kw):
            pass
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)
    return str(got.value)


def test_bad_files_fail_as_load_audio_fails(tmp_path):
    sr = 8000
    assert "no such file" in _same_error(tmp_path / "missing.wav")
    assert "folder" in _same_error(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "empty" in _same_error(tmp_path / "empty.wav")
    (tmp_path / "notes.wav").write_text("these are not samples\n" * 20)
    assert "not an audio file" in _same_error(tmp_path / "notes.wav")
    (tmp_path / "song.mp3").write_bytes(b"ID3\x04\x00" + bytes(400))
    assert "MP3" in _same_error(tmp_path / "song.mp3")
    whole = write(tmp_path / "ok.wav", tone(sr, 1), sr).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:30])
    assert "corrupt or truncated WAV header" in _same_error(tmp_path / "cut.wav")
    assert "at least 0.5 s" in _same_error(write(tmp_path / "short.wav", tone(sr, 0.3), sr))
    assert "at most" in _same_error(write(tmp_path / "long.wav", tone(sr, 2.0), sr), max_seconds=1.0)
    assert "outside" in _same_error(write(tmp_path / "slow.wav", tone(3000, 1.0), 3000))
    nan = tone(sr, 1.0)
    nan[5000, 0] = np.nan
    assert "NaN" in _same_error(write(tmp_path / "nan.wav", nan, sr, subtype="FLOAT"))
    huge = tone(sr, 1.0)
    huge[100, 0] = 1e9
    assert "far beyond full scale" in _same_error(write(tmp_path / "huge.wav", huge, sr, subtype="FLOAT"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(FileFormatError, match="regular"):
        WavBlockSource(fifo)


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "a.wav", tone(8000, 1.0), 8000)
    for block in (0, -5, 1.5, True, 1 << 20):
        with pytest.raises(InputError, match="block"):
            WavBlockSource(path, block)
    with pytest.raises(InputError, match="max_seconds"):
        WavBlockSource(path, max_seconds=0.1)
    with WavBlockSource(path) as src:
        assert "a.wav" in repr(src)


# -- sound cards (faked; this machine has none) ------------------------------------------


class FakePortAudioError(Exception):
    pass


def fake_sounddevice(devices, *, deliver=0, channels_ok=(1, 2), overflow_every=0):
    """A stand-in for the sounddevice module: `devices` is a list of dicts; the input stream
    calls its callback `deliver` times from its own thread, each block a running counter."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = FakePortAudioError
    sd.opened = []

    def query_devices(device=None, kind=None):
        if device is None and kind is None:
            return list(devices)
        inputs = [d for d in devices if d["max_input_channels"] > 0]
        if device is None:
            if not inputs:
                raise FakePortAudioError("Error querying device -1")
            return inputs[0]
        if isinstance(device, int):
            if not 0 <= device < len(devices):
                raise FakePortAudioError(f"Error querying device {device}")
            return devices[device]
        found = [d for d in inputs if device.lower() in d["name"].lower()]
        if not found:
            raise ValueError(f"No input device matching {device!r}")
        return found[0]

    def check_input_settings(device=None, channels=None, dtype=None, samplerate=None, **kw):
        if channels not in channels_ok:
            raise FakePortAudioError("Invalid number of channels")
        if samplerate not in (44100, 48000):
            raise FakePortAudioError("Invalid sample rate")

    class InputStream:
        def __init__(self, *, samplerate, blocksize, device, channels, dtype, latency, callback):
            self.blocksize, self.channels, self.callback = blocksize, channels, callback
            self.active = False
            self._thread = None
            sd.opened.append(self)

        def _run(self):
            for k in range(deliver):
                if not self.active:
                    return
                start = k * self.blocksize
                col = np.arange(start, start + self.blocksize, dtype=np.float32)
                indata = np.stack([col * (c + 1) for c in range(self.channels)], axis=1)
                overflow = bool(overflow_every and k % overflow_every == 0)
                # sounddevice passes CallbackFlags, false when no flag is set
                status = types.SimpleNamespace(input_overflow=True) if overflow else None
                self.callback(indata, self.blocksize, None, status)
                time.sleep(0.0005)

        def start(self):
            self.active = True
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

        def stop(self):
            self.active = False
            if self._thread is not None:
                self._thread.join()

        def close(self):
            self.active = False

    sd.query_devices = query_devices
    sd.check_input_settings = check_input_settings
    sd.InputStream = InputStream
    return sd


MIC = {"name": "USB Mic", "index": 1, "max_input_channels": 2, "max_output_channels": 0}
SPEAKER = {"name": "Speakers", "index": 0, "max_input_channels": 0, "max_output_channels": 2}


def use(monkeypatch, sd):
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    return sd


def test_no_input_device_says_what_to_do(monkeypatch):
    use(monkeypatch, fake_sounddevice([SPEAKER]))
    with pytest.raises(InputError) as err:
        DeviceBlockSource()
    assert str(err.value) == NO_DEVICE == "no audio input device found; use --audio-in FILE.wav"


def test_on_this_machine_without_a_sound_card():
    sd = pytest.importorskip("sounddevice")
    try:
        sd.query_devices(kind="input")
    except Exception:
        pass
    else:
        pytest.skip("this machine has an audio input device")
    with pytest.raises(InputError, match="no audio input device found; use --audio-in FILE.wav"):
        DeviceBlockSource()
    with pytest.raises(InputError, match="no audio input device found"):
        parse_audio_in("default")


@pytest.mark.parametrize("error", [ImportError, OSError])
def test_sounddevice_or_portaudio_missing(monkeypatch, error):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "sounddevice":
            raise error("PortAudio library not found" if error is OSError else "No module named 'sounddevice'")
        return real_import(name, *args, **kw)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(InputError, match=r"pip install 'kelly\[live\]'.*--audio-in FILE.wav"):
        DeviceBlockSource()


def test_unknown_device_lists_the_inputs(monkeypatch):
    use(monkeypatch, fake_sounddevice([SPEAKER, MIC]))
    with pytest.raises(InputError, match=r"no audio input device 'Studio'.*1: USB Mic"):
        DeviceBlockSource("Studio")
    with pytest.raises(InputError, match="no audio input device 7"):
        DeviceBlockSource(7)
    with pytest.raises(InputError, match="has no inputs"):
        DeviceBlockSource(0)
    with pytest.raises(InputError, match="cannot record 3 channel"):
        DeviceBlockSource("usb", channels=3)
    with pytest.raises(InputError, match="96,000 Hz"):
        DeviceBlockSource("usb", sr=96000)
    with pytest.raises(InputError):
        DeviceBlockSource("usb", block=0)
    with pytest.raises(InputError):
        DeviceBlockSource(1.5)


@pytest.mark.parametrize("channels", [1, 2])
def test_device_blocks_arrive_in_order_mixed_to_mono(monkeypatch, channels):
    sd = use(monkeypatch, fake_sounddevice([SPEAKER, MIC], deliver=200, overflow_every=50))
    src = DeviceBlockSource("usb", 48000, 256, channels=channels)
    assert src.device == 1 and src.device_name == "USB Mic"
    got, stamps = [], []
    with src:
        for block in src:
            got.append(block)
            stamps.append(src.last_stamp)
            if len(got) == 200:
                break
    assert sd.opened[0].active is False  # closed on leaving the with block
    mix = (1 + channels) / 2  # channel c holds the counter times (c + 1)
    want = np.arange(200 * 256, dtype=np.float32) * mix
    assert np.array_equal(np.concatenate(got), want)
    assert stamps == [k * 256 for k in range(200)]
    assert src.dropped == 0 and src.overflows == 4


def test_a_slow_consumer_loses_whole_blocks_and_sees_the_gap(monkeypatch):
    use(monkeypatch, fake_sounddevice([MIC], deliver=40))
    src = DeviceBlockSource(None, 44100, 64, queue_blocks=4)
    src.start()
    deadline = time.monotonic() + 10
    while src._ring.pushed + src.dropped < 40 and time.monotonic() < deadline:
        time.sleep(0.005)
    stamps = []
    for _ in src:
        stamps.append(src.last_stamp)
        if len(stamps) == 4:
            break
    src.close()
    assert src.dropped == 36
    assert stamps == [0, 64, 128, 192]  # the first four fitted; the rest were dropped whole


def test_a_stalled_device_raises(monkeypatch):
    use(monkeypatch, fake_sounddevice([MIC], deliver=0))
    monkeypatch.setattr(audio_in, "DEVICE_STALL_SECONDS", 0.05)
    with DeviceBlockSource() as src:
        with pytest.raises(InputError, match="stopped delivering audio"):
            next(iter(src))
    with pytest.raises(InputError, match="closed"):
        src.start()


def test_close_from_another_thread_ends_the_iteration(monkeypatch):
    use(monkeypatch, fake_sounddevice([MIC], deliver=0))
    src = DeviceBlockSource()
    threading.Timer(0.05, src.close).start()
    assert list(src) == []


# -- --audio-in ------------------------------------------------------------------------


def test_parse_audio_in(monkeypatch, tmp_path):
    path = write(tmp_path / "take.wav", tone(8000, 1.0), 8000)
    src = parse_audio_in(str(path), 256, 48000)
    assert isinstance(src, WavBlockSource) and src.block == 256 and src.sr == 8000
    assert isinstance(parse_audio_in(path), WavBlockSource)  # a Path
    monkeypatch.chdir(tmp_path)
    assert isinstance(parse_audio_in("take.wav"), WavBlockSource)
    with pytest.raises(FileFormatError, match="no such file"):
        parse_audio_in("missing.wav")  # looks like a file: not looked up as a device
    with pytest.raises(FileFormatError, match="no such file"):
        parse_audio_in("sub/dir/take")
    (tmp_path / "USB").mkdir()
    with pytest.raises(FileFormatError, match="folder"):
        parse_audio_in("USB")  # an existing path is a path
    use(monkeypatch, fake_sounddevice([SPEAKER, MIC]))
    for spec, device in (("default", 1), ("", 1), ("1", 1), ("usb mic", 1)):
        src = parse_audio_in(spec, 512, 44100)
        assert isinstance(src, DeviceBlockSource) and src.device == device and src.sr == 44100
    with pytest.raises(InputError, match="no audio input device 'piano'"):
        parse_audio_in("piano")
    with pytest.raises(InputError):
        parse_audio_in(3)
