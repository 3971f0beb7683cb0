"""The GRU decoder: the numpy twin (from RTNeural JSON) against torch, batch independence, foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kelly.ddsp.core import N_INPUTS, N_OUTPUTS  # noqa: E402
from kelly.ddsp.decoder import DecoderConfig, NumpyDecoder, plan, torch_decoder  # noqa: E402
from kelly.errors import ModelError  # noqa: E402


def _inputs(b=3, t=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(b, t, N_INPUTS)).astype(np.float32)
    x[..., 2] = x[..., 2] * 2.0 - 1.0
    return x


@pytest.fixture(scope="module")
def decoders(trained_voice):
    from kelly.ml.train.checkpoint import load_checkpoint

    folder = trained_voice.folder
    ckpt = load_checkpoint(folder / "ddsp.pt")
    model = torch_decoder(DecoderConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return NumpyDecoder((folder / "ddsp.json").read_bytes()), model


def test_numpy_decoder_equals_torch(decoders):
    dec, model = decoders
    x = _inputs()
    y, h = dec(x)
    with torch.no_grad():
        ty, th = model(torch.from_numpy(x))
    assert y.shape == (3, 50, N_OUTPUTS) and h.shape == (3, dec.hidden)
    assert np.abs(y - ty.numpy()).max() <= 1e-4
    assert np.abs(h - th[0].numpy()).max() <= 1e-4
    assert dec.hidden == 32
    assert dec.param_count == sum(p.numel() for p in model.parameters())


def test_numpy_decoder_carries_its_state(decoders):
    dec, model = decoders
    x = _inputs(b=2, t=40, seed=1)
    whole, _ = dec(x)
    first, h = dec(x[:, :25])
    rest, _ = dec(x[:, 25:], h)
    assert np.abs(np.concatenate([first, rest], axis=1) - whole).max() <= 1e-5
    with torch.no_grad():
        ty, _ = model(torch.from_numpy(x[:, 25:]), torch.from_numpy(h)[None])
    assert np.abs(rest - ty.numpy()).max() <= 1e-4


def test_voices_in_a_batch_are_independent(decoders):
    dec, _ = decoders
    x = _inputs(seed=2)
    batch, _ = dec(x)
    for i in range(len(x)):
        alone, _ = dec(x[i:i + 1])
        assert np.abs(alone[0] - batch[i]).max() <= 1e-5


def _random_state(hidden=8, out=N_OUTPUTS, recurrent="gru"):
    rng = np.random.default_rng(0)
    gates = 3 if recurrent == "gru" else 4

    def w(*shape):
        return rng.normal(scale=0.1, size=shape).astype(np.float32)

    return {"inp1.weight": w(hidden, N_INPUTS), "inp1.bias": w(hidden), "inp2.weight": w(hidden, hidden),
            "inp2.bias": w(hidden), "gru.weight_ih_l0": w(gates * hidden, hidden),
            "gru.weight_hh_l0": w(gates * hidden, hidden), "gru.bias_ih_l0": w(gates * hidden),
            "gru.bias_hh_l0": w(gates * hidden), "out1.weight": w(hidden, hidden), "out1.bias": w(hidden),
            "out2.weight": w(out, hidden), "out2.bias": w(out)}


def _json(state, the_plan) -> bytes:
    from kelly.ml.convert import state_dict_to_rtneural

    return json.dumps(state_dict_to_rtneural(state, the_plan, N_INPUTS)).encode()


def test_a_well_formed_decoder_json_loads():
    dec = NumpyDecoder(_json(_random_state(), plan()), name="fine.json")
    y, h = dec(_inputs(b=2, t=5))
    assert y.shape == (2, 5, N_OUTPUTS) and np.all(np.isfinite(y))


def test_an_lstm_model_is_refused():
    lstm_plan = [("dense", "inp1", "relu"), ("dense", "inp2", "relu"), ("lstm", "gru", 1),
                 ("dense", "out1", "relu"), ("dense", "out2", "")]
    data = _json(_random_state(recurrent="lstm"), lstm_plan)
    with pytest.raises(ModelError, match="bad-voice.json") as info:
        NumpyDecoder(data, name="bad-voice.json")
    assert "not a DDSP decoder" in str(info.value)


def test_wrong_sizes_are_refused():
    data = _json(_random_state(out=100), plan())
    with pytest.raises(ModelError, match="small-out.json"):
        NumpyDecoder(data, name="small-out.json")


def test_wrong_activation_is_refused():
    tanh_plan = [("dense", "inp1", "tanh"), ("dense", "inp2", "relu"), ("gru", "gru", 1),
                 ("dense", "out1", "relu"), ("dense", "out2", "")]
    with pytest.raises(ModelError, match="tanh.json"):
        NumpyDecoder(_json(_random_state(), tanh_plan), name="tanh.json")


@pytest.mark.parametrize("data", [b"", b"not json", b"{}", b'{"in_shape": [null, null, 5], "layers": []}'])
def test_garbage_is_a_model_error(data):
    with pytest.raises(ModelError, match="junk.json"):
        NumpyDecoder(data, name="junk.json")
