"""ONNX export of the transformer (kelly.transformer.onnx): parity with torch, the cache, no torch at run time."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from kelly.errors import ModelError  # noqa: E402
from kelly.transformer.model import CompoundTransformer, TorchStepper, TransformerConfig, config_for  # noqa: E402
from kelly.transformer.onnx import (HEADS_FILE, META_KEY, OPSET, STEP_FILE, OnnxStepper,  # noqa: E402
                                    export_onnx)
from kelly.transformer.sample import SamplingConfig, generate, generate_nocache, tokens_per_second  # noqa: E402
from tests.transformer.test_sample import TOY_SIZES, ToyGrammar  # noqa: E402

EMOTION = (-0.4, 0.7, 0.3)


def _model(block_size: int = 128, seed: int = 0, row_heads: bool = True) -> CompoundTransformer:
    cfg = TransformerConfig(sizes=TOY_SIZES, n_layer=2, n_head=2, n_embd=32, block_size=block_size, dropout=0.0,
                            row_heads=row_heads)
    model = CompoundTransformer(cfg, seed=seed).eval()
    with torch.no_grad():  # livelier than a fresh init: greedy choices well apart
        for head in [model.type_head, *model.family_heads]:
            head.weight.mul_(10.0)
        model.type_head.bias[4] = 1.5  # notes more often than bar lines: longer pieces
    return model


@pytest.fixture(scope="module", params=[True, False], ids=["row_heads", "type_heads"])
def exported(request, tmp_path_factory):
    model = _model(row_heads=request.param)
    folder = tmp_path_factory.mktemp("transformer-onnx")
    export_onnx(model, folder)
    return model, folder


def test_export_writes_a_self_describing_graph_and_head_tables(exported):
    model, folder = exported
    proto = onnx.load(folder / STEP_FILE)
    onnx.checker.check_model(proto)
    assert [o.version for o in proto.opset_import] == [OPSET]
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[META_KEY])
    assert meta["sizes"] == list(TOY_SIZES) and meta["n_layer"] == 2 and meta["block_size"] == 128
    assert meta["row_heads"] == model.config.row_heads
    names = [i.name for i in proto.graph.input]
    assert names == ["tokens", "emotion", "past_key_0", "past_value_0", "past_key_1", "past_value_1"]
    past_dims = [d.dim_param or d.dim_value for d in proto.graph.input[2].type.tensor_type.shape.dim]
    assert past_dims == ["batch", 2, "past", 16]
    assert [o.name for o in proto.graph.output] == ["hidden", "type_logits", "family_base", "present_key_0",
                                                    "present_value_0", "present_key_1", "present_value_1"]
    with np.load(folder / HEADS_FILE) as npz:
        expected = {f"f{f}_{j}" for f in range(1, 4) for j in range(f if model.config.row_heads else 1)}
        assert set(npz.files) == expected
        assert npz["f3_0"].shape == (TOY_SIZES[0], TOY_SIZES[3]) and npz["f3_0"].dtype == np.float32


def test_greedy_generation_is_the_same_on_onnxruntime(exported):
    model, folder = exported
    sampling = SamplingConfig(temperature=0.0)
    ref = generate(TorchStepper(model), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    got = generate(OnnxStepper(folder), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    assert len(ref) >= 50
    assert np.array_equal(ref, got)


def test_seeded_sampling_is_the_same_on_onnxruntime(exported):
    model, folder = exported
    sampling = SamplingConfig(temperature={"default": 1.0, 2: 0.7}, top_p=0.9, seed=11)
    ref = generate(TorchStepper(model), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    got = generate(OnnxStepper(folder), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    assert np.array_equal(ref, got)


def test_logits_agree_cached_uncached_and_across_runtimes(exported):
    model, folder = exported
    rows = generate(TorchStepper(model), ToyGrammar(bars=20), EMOTION, SamplingConfig(seed=2), max_tokens=60)
    ts, os_ = TorchStepper(model), OnnxStepper(folder)
    ts.reset(EMOTION)
    os_.reset(EMOTION)
    for t, row in enumerate(rows[:-1]):
        ht, ho = ts.step(row), os_.step(row)
        hfull = ts.full(rows[:t + 1])
        ofull = os_.full(rows[:t + 1])
        tl = ts.type_logits(ht)
        for other in (ts.type_logits(hfull), os_.type_logits(ho), os_.type_logits(ofull)):
            assert np.allclose(tl, other, atol=1e-5)
        nxt = rows[t + 1].copy()
        for f in range(1, 4):
            partial = nxt.copy()
            partial[f:] = 0
            fl = ts.family_logits(ht, partial, f)
            assert fl.shape == (TOY_SIZES[f],)
            for other in (ts.family_logits(hfull, partial, f), os_.family_logits(ho, partial, f),
                          os_.family_logits(ofull, partial, f)):
                assert np.allclose(fl, other, atol=1e-5)


def test_sliding_window_is_the_same_on_onnxruntime(tmp_path):
    model = _model(block_size=16, seed=5)
    export_onnx(model, tmp_path)
    sampling = SamplingConfig(temperature=0.0)
    ref = generate(TorchStepper(model), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=120)
    got = generate(OnnxStepper(tmp_path), ToyGrammar(bars=20), EMOTION, sampling, max_tokens=120)
    assert len(ref) >= 50 and np.array_equal(ref, got)


def test_missing_or_foreign_files_are_refused(tmp_path, exported):
    with pytest.raises(ModelError, match="export"):
        OnnxStepper(tmp_path)
    (tmp_path / STEP_FILE).write_bytes(b"not onnx")
    (tmp_path / HEADS_FILE).write_bytes(b"not npz")
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        OnnxStepper(tmp_path)
    _, folder = exported
    (tmp_path / STEP_FILE).write_bytes((folder / STEP_FILE).read_bytes())
    with pytest.raises(ModelError, match="npz"):
        OnnxStepper(tmp_path)
    np.savez(tmp_path / HEADS_FILE, f1_0=np.zeros((2, 2), np.float32))
    with pytest.raises(ModelError, match="table"):
        OnnxStepper(tmp_path)


def test_onnx_generation_runs_without_torch(exported):
    _, folder = exported
    code = ("import sys, numpy as np\n"
            "from kelly.transformer.onnx import OnnxStepper\n"
            "from kelly.transformer.sample import generate, UnconstrainedGrammar, SamplingConfig\n"
            f"s = OnnxStepper({str(folder)!r})\n"
            "rows = generate(s, UnconstrainedGrammar(s.sizes), (0, .5, .5), SamplingConfig(seed=1), max_tokens=20,\n"
            "                prompt=[[1, 0, 0, 0]])\n"
            "assert rows.shape == (20, 4), rows.shape\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_print_generation_speed_of_small():
    """Prints (does not assert) tokens/s of SMALL (random init) for 500 tokens, one thread."""
    sizes = (8, 50, 131, 65, 33, 131, 33, 100)  # about the tokenizer's families
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = CompoundTransformer(config_for("small", sizes), seed=0).eval()
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            export_onnx(model, folder)
            steppers = {"torch": TorchStepper(model), "onnxruntime": OnnxStepper(folder, threads=1)}
            lines = []
            for name, stepper in steppers.items():
                for cached in (True, False):
                    t0 = time.perf_counter()
                    rate = tokens_per_second(stepper, n_tokens=500, cached=cached)
                    lines.append(f"SMALL {name:<12} {'cache' if cached else 'no cache':<9} {rate:8.1f} tokens/s "
                                 f"({time.perf_counter() - t0:.1f} s)")
        print("\n" + "\n".join(lines))
    finally:
        torch.set_num_threads(threads)


def test_nocache_generation_on_onnxruntime_matches(exported):
    _, folder = exported
    stepper = OnnxStepper(folder)
    sampling = SamplingConfig(temperature=0.0)
    a = generate(stepper, ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    b = generate_nocache(stepper, ToyGrammar(bars=20), EMOTION, sampling, max_tokens=100)
    assert np.array_equal(a, b)


def test_with_the_tokenizers_grammar(tmp_path):
    """The real grammar (when the tokenizer is there): valid pieces that decode, the same on both runtimes."""
    tokens = pytest.importorskip("kelly.transformer.tokens")
    tk = tokens.CompoundTokenizer()
    model = CompoundTransformer(config_for("tiny", tk.sizes, block_size=64), seed=0).eval()
    with torch.no_grad():  # a random model that writes notes rather than empty bars
        model.type_head.bias[tokens.NOTE] = 1.5
        model.type_head.bias[tokens.POSITION] = 1.5
    export_onnx(model, tmp_path)
    for sampling in (SamplingConfig(temperature=0.0), SamplingConfig(temperature=1.0, top_p=0.95, seed=3)):
        got = {}
        for name, stepper in (("torch", TorchStepper(model)), ("onnxruntime", OnnxStepper(tmp_path))):
            grammar = tk.grammar(bars=4)
            got[name] = generate(stepper, grammar, EMOTION, sampling, max_tokens=400, families=tokens.FAMILIES)
            assert grammar.done
        assert np.array_equal(got["torch"], got["onnxruntime"])
        song = tk.decode(got["torch"])
        assert sum(len(t.notes) for t in song.tracks) > 0
        assert not getattr(song, "warnings", [])  # nothing needed repairing
