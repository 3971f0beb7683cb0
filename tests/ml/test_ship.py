"""From a training run to shipped weights: kelly.ml.ship, the model card, ``kelly models``.

A tiny real run (Kelly's own composed pieces, two epochs) is trained with the CLI,
shipped into a temporary assets folder, and read back: packed weights that compute what
the run's JSON computes, sidecars with test metrics beside the baseline, a card written
from them, and ``kelly models`` reporting the provenance. Also the ``collections``
setting that keeps Essen out of shipped weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kelly.errors import InputError

torch = pytest.importorskip("torch")

def _emotions() -> list[str]:
    from kelly.ml.data.composed import emotion_names

    return emotion_names()[:24]  # 24 thesaurus emotions: train, validation and test all get some


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kelly.cli import main
    from kelly.ml.data import composed

    root = tmp_path_factory.mktemp("data")
    composed.compose_dataset(data_dir=root, emotions=_emotions(), seeds=[0], bars=2, show_progress=False)
    splits = {r["split"] for r in composed.load_composed(root)}
    assert splits == {"train", "validation", "test"}, splits
    cfg = root / "tiny.toml"
    cfg.write_text('[defaults]\nepochs = 2\nbatch_size = 8\ncollections = "composed"\n')
    run = root / "run"
    rc = main(["train", "--models", "harmonypredictor,groovepredictor", "--data-dir", str(root), "--config",
               str(cfg), "--out", str(run), "--quiet"])
    assert rc == 0
    return root, run


def test_shipping_packs_the_weights_with_test_metrics_and_a_card(trained, tmp_path):
    from kelly.ml import runtime
    from kelly.ml.card import write_card
    from kelly.ml.ship import ship_model
    from kelly.ml.specs import SPECS

    root, run = trained
    meta = ship_model("harmonypredictor", run, tmp_path, data_dir=root)
    packed_path = tmp_path / "models" / "harmonypredictor.npz"
    x = np.random.default_rng(0).uniform(-1, 1, (4, 128)).astype(np.float32)
    spec = SPECS["harmonypredictor"]
    assert np.array_equal(runtime.load_model(packed_path, spec=spec).run(x),
                          runtime.load_model(run / "harmonypredictor.json", spec=spec).run(x))
    assert meta["test"]["n_test"] > 0 and {"loss", "top1", "top3"} <= set(meta["test"]["model"])
    assert {"loss", "top1"} <= set(meta["test"]["baseline"])
    assert meta["training"]["config"]["collections"] == "composed"
    assert meta["outputs"] and meta["schema_version"]  # the export sidecar's facts come along
    written = json.loads((tmp_path / "models" / "harmonypredictor.meta.json").read_text())
    assert written["sha256"] == meta["sha256"]
    card = write_card(tmp_path).read_text()
    assert "HarmonyPredictor" in card and "| top1 |" in card
    assert "Not shipped" in card  # the four networks not shipped here say so


def test_kelly_models_reports_provenance_and_metrics(trained, tmp_path, capsys):
    from kelly.cli import main
    from kelly.ml.ship import ship_model

    root, run = trained
    ship_model("groovepredictor", run, tmp_path, data_dir=root)
    assert main(["models", "--models-dir", str(tmp_path / "models"), "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    gp = rows["groovepredictor"]
    assert gp["live"] and gp["trained"] and gp["sidecar"] == "sha256 ok" and gp["data"] == "composed"
    assert gp["metric"] == "r2" and "test" in gp and "test_baseline" in gp
    assert main(["models", "--models-dir", str(tmp_path / "models")]) == 0
    text = capsys.readouterr().out
    assert "GroovePredictor" in text and "sha256 ok" in text and "test" in text
    # a file whose bytes no longer match its sidecar is reported, not trusted
    blob = (tmp_path / "models" / "groovepredictor.npz").read_bytes()
    (tmp_path / "models" / "groovepredictor.npz").write_bytes(blob)
    meta = json.loads((tmp_path / "models" / "groovepredictor.meta.json").read_text())
    meta["sha256"] = "0" * 64
    (tmp_path / "models" / "groovepredictor.meta.json").write_text(json.dumps(meta))
    assert main(["models", "--models-dir", str(tmp_path / "models")]) == 0
    assert "MISMATCH" in capsys.readouterr().out


def test_only_real_runs_ship_and_the_recognizer_check_needs_renders(trained, tmp_path):
    from kelly.ml.evaluate import recognizer_quadrants
    from kelly.ml.ship import ship_model

    root, run = trained
    with pytest.raises(InputError, match="no trained melodytransformer"):
        ship_model("melodytransformer", run, tmp_path, data_dir=root)
    with pytest.raises(InputError, match="render them first"):
        recognizer_quadrants(run, data_dir=root, folder="audio-timgm")


def test_collections_setting_is_checked_and_filters(trained):
    from kelly.ml.data.training import load_records
    from kelly.ml.train.config import collection_set, load_config

    root, _ = trained
    assert load_config("groovepredictor").collections.split(",").count("essen") == 0  # shipped defaults
    assert collection_set("all") is None and collection_set("bach, composed") == {"bach", "composed"}
    with pytest.raises(InputError, match="collections"):
        load_config("groovepredictor", overrides={"collections": "bach,mozart"})
    assert load_records(root, collections={"bach"}) == []
    assert len(load_records(root, collections={"composed"})) == len(_emotions())


def test_kelly_models_lists_the_transformer_and_the_ddsp_voice_too(capsys):
    """The two shipped generators are in ``kelly models`` (text and JSON), each with its held-out figure."""
    from kelly.cli import main

    assert main(["models", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert {k: rows[k]["kind"] for k in rows} == {**{k: "network" for k in ("emotionrecognizer", "melodytransformer",
                                                                            "harmonypredictor", "dynamicsengine",
                                                                            "groovepredictor")},
                                                  "transformer": "transformer", "ddsp": "ddsp"}
    for key in ("transformer", "ddsp"):
        assert rows[key]["test"] < rows[key]["test_baseline"]  # better than its baseline on held-out data
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "CompoundTransformer (kelly compose --composer transformer)" in text
    assert "DDSP voice (kelly render --voice ddsp)" in text and "non-learned baseline" in text
