"""The audio door: ``kelly.emotion.audio`` (front-end, file reading, readings) and ``kelly feel --audio``.

All audio is synthesised here with numpy and written with soundfile into ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

from kelly import cli  # noqa: E402
from kelly.emotion import audio as A  # noqa: E402
from kelly.errors import FileFormatError, InputError  # noqa: E402
from kelly.ml import schema  # noqa: E402

RATES = (8000, 22050, 44100, 48000, 96000)


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch, tmp_path):
    """Readings must not pick up model files from the user's own folders."""
    monkeypatch.delenv("KELLY_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def chord(sr, seconds=2.0, amp=1.0):
    """A major triad on A4 (440 Hz loudest), float32 mono."""
    t = np.arange(int(round(sr * seconds))) / sr
    y = 0.25 * np.sin(2 * np.pi * 440.0 * t) + 0.12 * np.sin(2 * np.pi * 554.37 * t) \
        + 0.1 * np.sin(2 * np.pi * 659.25 * t)
    return (amp * y).astype(np.float32)


def soft_slow(sr=22050, seconds=4.0):
    """A quiet 220 Hz sine swelling slowly (0.25 Hz)."""
    t = np.arange(int(sr * seconds)) / sr
    return (0.02 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def loud_fast_noise(sr=22050, seconds=4.0, seed=0):
    """Loud white-noise bursts, eight a second."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    gate = ((np.arange(n) * 8 // sr) % 2 == 0).astype(np.float32) * 0.8 + 0.2
    return (0.5 * gate * rng.standard_normal(n)).astype(np.float32)


def write(path, y, sr, **kw):
    sf.write(str(path), y, sr, **kw)
    return str(path)


def one_line_error(capsys, argv):
    """Run the CLI; it must exit 2 with exactly one line on stderr and no traceback."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("kelly: error: ") and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- front-end


def test_front_end_contract_is_read_only_and_matches_the_defaults():
    fe = A.FRONT_END
    assert (fe["sample_rate"], fe["n_fft"], fe["hop_length"], fe["n_mels"]) == (22050, 2048, 512, schema.MEL_BINS)
    assert (fe["fmin"], fe["fmax"], fe["mel_htk"], fe["mel_norm"], fe["ref"], fe["top_db"]) == \
        (30.0, 11025.0, False, None, 1.0, None)
    assert fe["frames_per_step"] == 1 and math.isclose(fe["steps_per_second"], 22050 / 512)
    with pytest.raises(TypeError):
        fe["n_fft"] = 1024  # type: ignore[index]


def test_log_mel_frames_shape_range_and_full_scale_reference():
    sr = 22050
    y = chord(sr, 2.0)
    m = A.log_mel_frames(y, sr)
    assert m.shape == (1 + len(y) // 512, 128) and m.dtype == np.float32
    assert 0.0 <= m.min() and m.max() <= 1.0
    # 0 dBFS is a full-scale sine: at -20 dBFS its band reads (-20 + 80) / 80 = 0.75, plus the 0-2 dB
    # a Hann-windowed sine leaves in a peak-1 triangle; 20 dB softer is 0.25 lower; silence is the floor.
    t = np.arange(sr) / sr
    level = {db: A.log_mel_frames((10 ** (db / 20) * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32),
                                  sr)[5:-5].max() for db in (0, -20, -40)}
    assert level[0] == 1.0 and 0.75 <= level[-20] <= 0.775
    assert level[-20] - level[-40] == pytest.approx(0.25, abs=1e-4)
    assert A.log_mel_frames(np.zeros(sr, np.float32), sr).max() == 0.0


def test_front_end_is_librosa_melspectrogram_with_the_contract_parameters():
    """FRONT_END, spelled out as one librosa call, gives exactly log_mel_frames (across its 2048-frame chunks)."""
    librosa = A._librosa()
    fe = A.FRONT_END
    y = loud_fast_noise(22050, 50.0) * np.float32(0.3)
    power = librosa.feature.melspectrogram(
        y=y, sr=fe["sample_rate"], n_fft=fe["n_fft"], win_length=fe["win_length"], hop_length=fe["hop_length"],
        window=fe["window"], center=fe["center"], pad_mode=fe["pad_mode"], power=fe["power"], n_mels=fe["n_mels"],
        fmin=fe["fmin"], fmax=fe["fmax"], htk=fe["mel_htk"], norm=fe["mel_norm"]) * fe["spectrum_scale"]
    expected = schema.normalize_mel_db(librosa.power_to_db(power, ref=fe["ref"], amin=fe["amin"],
                                                           top_db=fe["top_db"])).T
    got = A.log_mel_frames(y, 22050)
    assert got.shape == expected.shape == (1 + len(y) // 512, 128)
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_frames_are_independent_of_the_rest_of_the_clip():
    """No clip-relative floor: a frame reads the same whether or not a loud part follows."""
    sr = 22050
    soft = soft_slow(sr, 2.0)
    both = np.concatenate([soft, loud_fast_noise(sr, 2.0)])
    a, b = A.log_mel_frames(soft, sr), A.log_mel_frames(both, sr)
    np.testing.assert_array_equal(a[:-4], b[: len(a) - 4])


@pytest.mark.parametrize("sr", RATES)
def test_a_tone_peaks_in_the_same_mel_bin_at_every_rate(tmp_path, sr):
    ref = A.log_mel_frames(chord(22050), 22050)
    path = write(tmp_path / f"c{sr}.wav", chord(sr), sr)
    y, out_sr = A.load_audio(path)
    assert out_sr == 22050
    m = A.log_mel_frames(y, out_sr)
    assert m.shape == ref.shape
    assert int(m.mean(0).argmax()) == int(ref.mean(0).argmax()) == 15  # the band centred at 439 Hz
    low = A._librosa().mel_frequencies(n_mels=130, fmin=30.0, fmax=11025.0)[1:-1] < 3500  # below 8 kHz's Nyquist
    assert np.abs(m[:, low] - ref[:, low]).mean() < 0.002
    # the array path (librosa.resample, soxr HQ) and the file path (streamed soxr HQ) agree exactly
    np.testing.assert_array_equal(A.log_mel_frames(sf.read(path, dtype="float32")[0], sr), m)


@pytest.mark.parametrize("fmt, ext, sr", [("FLAC", "flac", 8000), ("FLAC", "flac", 96000), ("OGG", "ogg", 22050),
                                          ("OGG", "ogg", 48000), ("OGG", "ogg", 96000), ("AIFF", "aiff", 44100)])
def test_flac_ogg_and_aiff_read_like_wav(tmp_path, fmt, ext, sr):
    ref = A.log_mel_frames(chord(22050), 22050)
    m = A.log_mel_frames(*A.load_audio(write(tmp_path / f"c.{ext}", chord(sr), sr, format=fmt)))
    assert m.shape == ref.shape
    assert list(np.argsort(-m.mean(0))[:3]) == list(np.argsort(-ref.mean(0))[:3])
    loud = ref.mean(0) > 0.6  # a lossy codec changes the noise floor, not the tones
    assert np.abs(m.mean(0)[loud] - ref.mean(0)[loud]).max() < (0.002 if fmt != "OGG" else 0.02)


def test_stereo_and_multichannel_are_averaged(tmp_path):
    sr = 44100
    left, right = chord(sr, 1.0), soft_slow(sr, 1.0)
    y, out_sr = A.load_audio(write(tmp_path / "st.wav", np.stack([left, right], 1), sr, subtype="FLOAT"), sr=None)
    assert out_sr == sr
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)
    many = np.tile(left[:, None], (1, 32))
    y32, _ = A.load_audio(write(tmp_path / "c32.wav", many, sr, subtype="FLOAT"), sr=None)
    np.testing.assert_allclose(y32, left, atol=1e-6)


def test_array_inputs_are_checked_at_the_boundary():
    y = chord(22050)
    for bad, match in ((np.stack([y, y]), "mono"), ((y * 32767).astype(np.int16), "floating-point"),
                       (np.full(22050, np.nan, np.float32), "NaN"), (y[:1000], "at least n_fft")):
        with pytest.raises(InputError, match=match):
            A.log_mel_frames(bad, 22050)
    for kw, match in (({"hop_length": 4096}, "hop_length"), ({"fmax": 20000.0}, "fmax"), ({"n_fft": 0}, "n_fft"),
                      ({"ref": 0.0}, "ref"), ({"top_db": -1.0}, "top_db")):
        with pytest.raises(InputError, match=match):
            A.log_mel_frames(y, 22050, **kw)
    for sr in (1000, 500_000, float("nan"), True):
        with pytest.raises(InputError, match="sr"):
            A.log_mel_frames(y, sr)


# --------------------------------------------------------------------------- bad files


def _wav_header(data_bytes, *, sr=8000, bits=8, rf64_frames=None):
    """A PCM mono WAV header declaring ``data_bytes`` of samples (RF64 with a ds64 chunk when asked)."""
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * bits // 8, bits // 8, bits)
    fmt_chunk = b"fmt " + struct.pack("<I", 16) + fmt
    if rf64_frames is None:
        return b"RIFF" + struct.pack("<I", min(0xFFFFFFFF, 36 + data_bytes)) + b"WAVE" + fmt_chunk + \
            b"data" + struct.pack("<I", data_bytes)
    ds64 = struct.pack("<QQQI", 36 + 28 + data_bytes, data_bytes, rf64_frames, 0)
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + \
        fmt_chunk + b"data" + struct.pack("<I", 0xFFFFFFFF)


def _sparse(path, header, total):
    """The header, then zeros up to ``total`` bytes, without writing them (a sparse file)."""
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(total)
    return str(path)


def _sparse_files_work(folder):
    """Whether this filesystem stores a file extended by truncate() without writing its zeros."""
    probe = folder / "probe"
    with open(probe, "wb") as handle:
        handle.truncate(64 << 20)
    sparse = getattr(os.stat(probe), "st_blocks", 1 << 20) * 512 < (1 << 20)
    probe.unlink()
    return sparse


def _bad_files(tmp_path):
    sr = 8000
    ok = write(tmp_path / "ok.wav", chord(sr, 1.0), sr)
    nan = chord(sr, 1.0, amp=1.0)
    nan[4000] = np.nan
    inf = chord(sr, 1.0)
    inf[100] = np.inf
    (tmp_path / "text.wav").write_text("these are words, not samples\n" * 20)
    (tmp_path / "trunc.wav").write_bytes(open(ok, "rb").read()[:30])
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "song.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 500)
    (tmp_path / "folder.wav").mkdir()
    flac = open(write(tmp_path / "ok.flac", chord(sr, 1.0), sr, format="FLAC"), "rb").read()
    (tmp_path / "trunc.flac").write_bytes(flac[:20])
    n = 10 ** 10
    huge = {
        # Headers declaring 10^10 frames (RF64) and 2^32 - 16 frames (plain WAV) of 8-bit audio, backed by
        # sparse files of that size: refused from the header, before anything is decoded.
        "huge rf64": (_sparse(tmp_path / "huge64.wav", _wav_header(n, rf64_frames=n), 80 + n), "from its header"),
        "huge wav": (_sparse(tmp_path / "huge.wav", _wav_header(0xFFFFFFF0), 44 + 0xFFFFFFF0), "149 h"),
    } if _sparse_files_work(tmp_path) else {}
    return huge | {
        "missing": (str(tmp_path / "nowhere.wav"), "no such file"),
        "folder": (str(tmp_path / "folder.wav"), "is a folder"),
        "empty": (str(tmp_path / "empty.wav"), "empty"),
        "text": (str(tmp_path / "text.wav"), "not an audio file"),
        "truncated wav header": (str(tmp_path / "trunc.wav"), "corrupt or truncated WAV header"),
        "truncated flac header": (str(tmp_path / "trunc.flac"), "corrupt or truncated FLAC header"),
        "nan": (write(tmp_path / "nan.wav", nan, sr, subtype="FLOAT"), "NaN or infinite samples (first at 0.500 s)"),
        "inf": (write(tmp_path / "inf.wav", inf, sr, subtype="DOUBLE"), "NaN or infinite"),
        "huge float": (write(tmp_path / "big.wav", chord(sr, 1.0) * 1e9, sr, subtype="FLOAT"), "beyond full scale"),
        "too short": (write(tmp_path / "short.wav", chord(sr, 0.3), sr), "only 0.300 s long"),
        "no samples": (write(tmp_path / "zero.wav", np.zeros(0, np.float32), sr), "no audio"),
        "low rate": (write(tmp_path / "low.wav", chord(1000, 1.0), 1000), "sample rate 1,000 Hz"),
        "high rate": (write(tmp_path / "high.wav", chord(8000, 1.0), 500_000), "sample rate 500,000 Hz"),
        "33 channels": (write(tmp_path / "c33.wav", np.zeros((8000, 33), np.float32), sr), "33 channels"),
        "mp3": (str(tmp_path / "song.mp3"), "MP3 audio is not supported"),
    }


def test_every_bad_file_is_one_clear_line(tmp_path, capsys):
    for name, (path, expected) in _bad_files(tmp_path).items():
        with pytest.raises((FileFormatError, InputError)) as info:
            A.load_audio(path)
        message = str(info.value)
        assert expected in message and "\n" not in message, (name, message)
        assert os.path.basename(path) in message, (name, message)
        err = one_line_error(capsys, ["feel", "--audio", path])
        assert expected in err, (name, err)


def test_damaged_data_is_one_line_or_a_reading_never_a_traceback(tmp_path, capsys):
    sr = 22050
    data = bytearray(open(write(tmp_path / "g.flac", chord(sr, 4.0), sr, format="FLAC"), "rb").read())
    mid = len(data) * 6 // 10
    data[mid:mid + 400] = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    (tmp_path / "bad.flac").write_bytes(bytes(data))
    code = cli.main(["feel", "--audio", str(tmp_path / "bad.flac")])
    out, err = capsys.readouterr()
    if code == 2:  # this libFLAC loses sync: "corrupt audio data between 0.00 s and 2.97 s (flac decoder lost sync)"
        assert err.count("\n") == 1 and "bad.flac: corrupt audio data between 0.00 s and 2.97 s" in err
    else:  # another libFLAC may resync and decode around the damage
        assert code == 0 and json.loads(out.splitlines()[0])["reading"] == "overall"


def test_a_header_longer_than_its_file_is_read_as_far_as_the_file_goes(tmp_path):
    """libsndfile bounds a declared length by the file's size; what is there is read (a cut-off recording)."""
    path = tmp_path / "liar.wav"
    path.write_bytes(_wav_header(10 ** 10, rf64_frames=10 ** 10) + bytes([128]) * 8000)  # 1 s of 8-bit silence
    y, sr = A.load_audio(path)
    assert sr == 22050 and len(y) == 22050 and np.abs(y).max() < 1e-6


def test_limits_can_be_tightened(tmp_path):
    path = write(tmp_path / "two.wav", chord(22050, 2.0), 22050)
    with pytest.raises(FileFormatError, match="is 2.00 s long .from its header.; Kelly reads at most 1.00 s"):
        A.load_audio(path, max_seconds=1.0)
    with pytest.raises(InputError, match="max_seconds"):
        A.load_audio(path, max_seconds=0.1)


# --------------------------------------------------------------------------- readings


def test_reading_per_second_and_overall(tmp_path, no_shipped_models):
    path = write(tmp_path / "c.wav", np.concatenate([chord(44100, 2.5), np.zeros(44100, np.float32)]), 44100)
    reading = A.recognize_audio(path)
    assert reading.model == A.FALLBACK_MODEL and not reading.live
    assert reading.sample_rate == 44100 and math.isclose(reading.duration, 3.5)
    assert [(m.start, m.end) for m in reading.seconds] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 3.5)]
    assert [m.silent for m in reading.seconds] == [False, False, False, True]
    assert reading.seconds[-1].confidence == 0.0 and all(m.confidence > 0 for m in reading.seconds[:3])
    assert "3 of 4 seconds (1 silent left out)" in reading.summary
    heard = reading.seconds[:3]
    assert reading.overall.arousal == pytest.approx(float(np.median([m.arousal for m in heard])))
    assert reading.overall.confidence == pytest.approx(0.25)  # the fallback's documented confidence
    from kelly.emotion.thesaurus import load_thesaurus

    o = reading.overall
    assert o.emotion == load_thesaurus().nearest(o.valence, o.arousal, o.dominance).name
    state = reading.to_state()
    assert state.source == "audio" and state.label == o.emotion
    assert reading.n_frames == 1 + int(3.5 * 22050) // 512


def test_frames_are_decoded_as_the_schema_decodes_an_embedding():
    rng = np.random.default_rng(3)
    emb = rng.uniform(-1.5, 1.5, (4, 64)).astype(np.float32)
    got = A._decode_frames(emb)
    for row, vals in zip(emb, got):
        d = schema.decode_embedding(row)
        assert list(vals) == pytest.approx([d["valence"], d["arousal"], d["dominance"], d["intensity"],
                                            d["confidence"]])


def test_loud_noise_reads_more_aroused_than_a_soft_sine(no_shipped_models):
    """The fallback maps loudness (mean normalised mel level) to arousal; that is all this asserts."""
    soft = A.recognize_audio(soft_slow(), 22050)
    loud = A.recognize_audio(loud_fast_noise(), 22050)
    assert loud.overall.arousal > soft.overall.arousal + 0.4
    assert min(m.arousal for m in loud.seconds) > max(m.arousal for m in soft.seconds)
    assert loud.overall.intensity > soft.overall.intensity


def test_silence_is_said_to_be_silent():
    reading = A.recognize_audio(np.zeros(22050 * 2, np.float32), 22050)
    assert reading.overall.silent and all(m.silent for m in reading.seconds)
    assert reading.overall.confidence == 0.0 and all(m.confidence == 0.0 for m in reading.seconds)
    assert "silent" in reading.summary and reading.overall.level_dbfs == -120.0


def test_recognize_audio_argument_checks(tmp_path):
    path = write(tmp_path / "c.wav", chord(22050), 22050)
    with pytest.raises(InputError, match="sr is read from the file"):
        A.recognize_audio(path, 22050)
    with pytest.raises(InputError, match="sample rate"):
        A.recognize_audio(chord(22050))
    with pytest.raises(InputError, match="at least 0.5 s"):
        A.recognize_audio(chord(22050, 0.2), 22050)
    with pytest.raises(InputError, match="does not exist"):
        A.recognize_audio(path, models_dir=tmp_path / "no-models")


def _write_recognizer(folder, *, trained=None):
    """A small-weight EmotionRecognizer in RTNeural JSON (and optionally its sidecar)."""
    import hashlib

    from kelly.ml.convert import spec_state_dict_to_rtneural
    from kelly.ml.specs import SPECS

    spec = SPECS["emotionrecognizer"]
    rng = np.random.default_rng(0)
    state = {}
    for i, layer in enumerate(spec.layers):
        if layer.kind == "dense":
            state[f"layers.{i}.weight"] = rng.uniform(-0.05, 0.05, (layer.out_size, layer.in_size)).astype(np.float32)
            state[f"layers.{i}.bias"] = np.zeros(layer.out_size, np.float32)
        else:
            h = layer.out_size
            state[f"layers.{i}.weight_ih_l0"] = rng.uniform(-0.05, 0.05, (4 * h, layer.in_size)).astype(np.float32)
            state[f"layers.{i}.weight_hh_l0"] = rng.uniform(-0.05, 0.05, (4 * h, h)).astype(np.float32)
            state[f"layers.{i}.bias_ih_l0"] = np.zeros(4 * h, np.float32)
            state[f"layers.{i}.bias_hh_l0"] = np.zeros(4 * h, np.float32)
    text = json.dumps(spec_state_dict_to_rtneural(spec, state))
    folder.mkdir(exist_ok=True)
    (folder / spec.file_name).write_text(text)
    if trained is not None:
        meta = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "trained": trained}
        (folder / "emotionrecognizer.meta.json").write_text(json.dumps(meta))


def test_a_model_file_is_used_and_named_when_present(tmp_path, capsys):
    models = tmp_path / "models"
    _write_recognizer(models, trained=False)
    y = chord(22050, 1.0)
    reading = A.recognize_audio(y, 22050, models_dir=models)
    assert reading.live and str(models / "emotionrecognizer.json") in reading.model
    assert "untrained: initialised from a fixed seed" in reading.model
    (models / "emotionrecognizer.meta.json").unlink()
    assert "training unknown" in A.recognize_audio(y, 22050, models_dir=models).model
    path = write(tmp_path / "c.wav", y, 22050)
    assert cli.main(["feel", "--audio", path, "--models-dir", str(models)]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["model"].startswith("EmotionRecognizer network")
    (models / "emotionrecognizer.json").write_text("{ not json")
    one_line_error(capsys, ["feel", "--audio", path, "--models-dir", str(models)])


# --------------------------------------------------------------------------- kelly feel --audio


def test_feel_audio_json_lines(tmp_path, capsys, no_shipped_models):
    path = write(tmp_path / "song.flac", np.stack([chord(48000, 2.2), chord(48000, 2.2)], 1), 48000, format="FLAC")
    assert cli.main(["feel", "--audio", path, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    overall, seconds = rows[0], rows[1:]
    common = {"audio", "reading", "seconds", "emotion", "family", "valence", "arousal", "dominance", "intensity",
              "confidence", "source", "level_dbfs", "silent"}
    assert set(overall) == common | {"model", "summary", "sample_rate"}
    assert overall["reading"] == "overall" and overall["source"] == "audio" and overall["audio"] == path
    assert overall["model"] == A.FALLBACK_MODEL and overall["sample_rate"] == 48000
    assert overall["seconds"] == [0.0, 2.2]
    assert [r["seconds"] for r in seconds] == [[0.0, 1.0], [1.0, 2.0], [2.0, 2.2]]
    assert all(set(r) == common and r["reading"] == "second" for r in seconds)
    assert -1 <= overall["valence"] <= 1 and 0 <= overall["arousal"] <= 1


def test_feel_audio_without_json_flag_is_the_same(tmp_path, capsys):
    path = write(tmp_path / "c.wav", chord(22050, 1.0), 22050)
    assert cli.main(["feel", "--audio", path]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["feel", "--json", "--audio", path]) == 0
    assert capsys.readouterr().out == plain


@pytest.mark.parametrize("argv, match", [
    (["feel", "--audio", "x.wav", "I feel grief"], "not both"),
    (["feel", "--models-dir", ".", "I feel grief"], "--models-dir"),
    (["feel", "--audio", "x.wav", "--evaluate", "x.jsonl"], "not both"),
])
def test_feel_audio_argument_mistakes(tmp_path, capsys, argv, match):
    assert match in one_line_error(capsys, argv)


def test_feel_text_is_unchanged(capsys):
    assert cli.main(["feel", "I feel grief"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert list(row) == ["text", "emotion", "family", "valence", "arousal", "dominance", "intensity", "confidence",
                         "secondary", "evidence"]
