"""The compound-word transformer (kelly.transformer.model): shapes, loss, cache, emotion, init."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from kelly.transformer.model import (LARGE, SMALL, CompoundTransformer, TorchStepper,  # noqa: E402
                                     TransformerConfig, compound_loss, config_for, default_emb_size)

SIZES = (5, 9, 13, 5)
#: Something like the tokenizer's families (type, bar/position, pitch, duration, velocity,
#: program, tempo, chord) for size checks.
REALISTIC_SIZES = (8, 50, 131, 65, 33, 131, 33, 100)


def tiny(**kw) -> TransformerConfig:
    base = dict(sizes=SIZES, n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0)
    base.update(kw)
    return TransformerConfig(**base)


def random_tokens(n: int, t: int, seed: int = 0, sizes=SIZES) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cols = [torch.randint(1, s, (n, t), generator=g) for s in sizes]  # no PAD rows
    return torch.stack(cols, dim=-1)


def test_forward_shapes_and_losses():
    model = CompoundTransformer(tiny(), seed=0)
    x = random_tokens(3, 10)
    emo = torch.rand(3, 3)
    logits, loss = model(x, emo)
    assert [tuple(l.shape) for l in logits] == [(3, 10, s) for s in SIZES] and loss is None
    logits, loss, fam = model(x, emo, x, return_family_losses=True)
    assert loss.shape == () and fam.shape == (4,)
    assert torch.isclose(loss, fam.mean())
    # at initialisation every family is close to uniform
    assert torch.allclose(fam, torch.log(torch.tensor(SIZES, dtype=torch.float32)), atol=0.3)


def test_pad_targets_are_ignored():
    model = CompoundTransformer(tiny(), seed=0)
    x = random_tokens(2, 12)
    emo = torch.rand(2, 3)
    _, ref = model(x[:, :8], emo, x[:, 1:9])
    y = x[:, 1:13].clone()
    y[:, 8:] = 0                               # PAD rows after the piece
    xin = torch.cat([x[:, :8], torch.zeros(2, 3, 4, dtype=torch.long)], dim=1)
    _, loss = model(xin, emo, torch.cat([y[:, :8], torch.zeros(2, 3, 4, dtype=torch.long)], dim=1))
    assert torch.isclose(loss, ref, atol=1e-6)


def test_family_loss_sums_and_ignore_none():
    model = CompoundTransformer(tiny(), seed=1)
    x = random_tokens(2, 9)
    emo = torch.rand(2, 3, generator=torch.Generator().manual_seed(3))
    tgt = x[:, 1:].clone()
    tgt[0, -2:] = 0                          # two PAD rows
    tgt[1, :3, 2] = 0                        # three NONE pitches
    logits, loss, fam = model(x[:, :-1], emo, tgt, return_family_losses=True)
    sums, n = model.family_loss_sums(x[:, :-1], emo, tgt)
    assert n == 2 * 8 - 2
    assert torch.allclose(sums / n, fam, atol=1e-5)
    _, fam_none = compound_loss(logits, tgt, ignore_none=True)
    assert torch.allclose(fam_none[[0, 1, 3]], fam[[0, 1, 3]])
    assert not torch.isclose(fam_none[2], fam[2])
    sums_none, _ = model.family_loss_sums(x[:, :-1], emo, tgt, ignore_none=True)
    assert torch.isclose(sums_none[2] / (n - 3), fam_none[2], atol=1e-5)


def test_loss_falls_on_a_memorised_sequence():
    torch.manual_seed(0)
    model = CompoundTransformer(tiny(n_embd=48), seed=0)
    opt = model.configure_optimizer(0.0, 3e-3)
    x = random_tokens(1, 25, seed=5)
    emo = torch.tensor([[0.5, 0.5, 0.5]])
    model.train()
    first = None
    for _ in range(100):
        _, loss = model(x[:, :-1], emo, x[:, 1:])
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first, (first, loss.item())


@pytest.mark.parametrize("row_heads", [True, False])
def test_family_heads_read_only_what_is_chosen_before_them(row_heads):
    model = CompoundTransformer(tiny(row_heads=row_heads), seed=0)
    x = random_tokens(1, 6)
    emo = torch.rand(1, 3)
    base, _ = model(x, emo, x)
    for changed in range(4):
        t = x.clone()
        t[..., changed] = (t[..., changed] % (SIZES[changed] - 1)) + 1  # another non-PAD value
        logits, _ = model(x, emo, t)
        for f in range(4):
            reads = f > changed if row_heads else (f > 0 and changed == 0)
            assert torch.equal(logits[f], base[f]) != reads, (changed, f)


def test_forward_without_targets_is_greedy_in_row_order():
    model = CompoundTransformer(tiny(), seed=4).eval()
    x = random_tokens(1, 5)
    emo = torch.rand(1, 3)
    with torch.no_grad():
        logits, _ = model(x, emo)
        chosen = torch.stack([lg.argmax(-1) for lg in logits], dim=-1)
        again, _ = model(x, emo, chosen)
    for a, b in zip(logits, again):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("batch,row_heads", [(1, True), (2, True), (2, False)])
def test_cache_gives_the_full_forward_logits(batch, row_heads):
    model = CompoundTransformer(tiny(row_heads=row_heads), seed=2).eval()
    x = random_tokens(batch, 20, seed=batch)
    emo = torch.rand(batch, 3)
    with torch.no_grad():
        full, _ = model.step(x, emo)
        cache, steps = None, []
        for t in range(20):
            h, cache = model.step(x[:, t:t + 1], emo, cache)
            steps.append(h)
        stepped = torch.cat(steps, dim=1)
        h1, c = model.step(x[:, :7], emo)                  # a prefix in one go, then chunks
        h2, c = model.step(x[:, 7:12], emo, c)
        h3, c = model.step(x[:, 12:], emo, c)
        chunked = torch.cat([h1, h2, h3], dim=1)
        assert all(k.shape == (batch, 2, 20, 16) for k, v in cache)
        for h in (stepped, chunked):
            assert torch.allclose(h, full, atol=1e-5)
            assert torch.allclose(model.type_logits(h), model.type_logits(full), atol=1e-5)
            for f in range(1, 4):
                assert torch.allclose(model.family_logits(h, x, f), model.family_logits(full, x, f), atol=1e-5)
        logits, _ = model(x, emo, x)
        assert torch.allclose(logits[3], model.family_logits(full, x, 3), atol=1e-6)


def test_context_limit_and_sliding_window():
    model = CompoundTransformer(tiny(block_size=16), seed=0).eval()
    x = random_tokens(1, 40, seed=9)
    emo = torch.rand(1, 3)
    with pytest.raises(ValueError, match="block_size"):
        model.step(x[:, :17], emo)
    stepper = TorchStepper(model)                    # keep = 12
    stepper.reset(emo[0].numpy())
    for t in range(40):
        h = stepper.step(x[0, t].numpy())
        if t >= 16:
            # the same as a fresh pass over the window the stepper holds: the last few rows,
            # from position 0, at most block_size of them
            length = stepper.cache[0][0].shape[2]
            assert 12 <= length <= 16
            ref = stepper.full(x[0, t + 1 - length:t + 1].numpy())
            assert torch.allclose(h, ref, atol=1e-5)
    with pytest.raises(ValueError):
        TorchStepper(model, keep=16)


def test_emotion_changes_the_logits():
    model = CompoundTransformer(tiny(), seed=0).eval()
    x = random_tokens(1, 8)
    with torch.no_grad():
        a, _ = model(x, torch.tensor([[-0.9, 0.1, 0.2]]))
        b, _ = model(x, torch.tensor([[0.9, 0.9, 0.8]]))
    for la, lb in zip(a, b):
        assert (la - lb).abs().max() > 1e-3
    # and at every step, not only the first
    assert ((a[0] - b[0]).abs().amax(dim=-1) > 1e-4).all()


def test_init_statistics_and_seed():
    cfg = tiny(n_embd=128, n_layer=4, n_head=4)
    model = CompoundTransformer(cfg, seed=0)
    resid = 0.02 / math.sqrt(2 * cfg.n_layer)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert abs(p.std().item() - resid) < 0.1 * resid, name
        elif name.endswith(".weight") and p.dim() == 2:
            assert abs(p.std().item() - 0.02) < 0.15 * 0.02, name
            assert abs(p.mean().item()) < 0.005, name
        elif name.endswith("bias") and "ln" not in name:
            assert torch.count_nonzero(p) == 0, name
        elif "ln" in name:
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name
    again = CompoundTransformer(cfg, seed=0)
    other = CompoundTransformer(cfg, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert not torch.equal(model.h[0].attn.c_attn.weight, other.h[0].attn.c_attn.weight)


def test_config_rules_and_round_trip():
    assert [default_emb_size(n) for n in (3, 33, 130, 5000)] == [16, 48, 96, 128]
    cfg = config_for("small", REALISTIC_SIZES)
    assert cfg.family_emb_sizes[2] == 96 and cfg.n_families == 8
    back = TransformerConfig.from_dict(cfg.to_dict())
    assert back.to_dict() == cfg.to_dict()
    assert config_for("tiny", SIZES, block_size=64).block_size == 64
    for bad in (dict(sizes=(5,)), dict(n_embd=30, n_head=4), dict(emb_sizes=(8, 8)), dict(dropout=1.0)):
        with pytest.raises(ValueError):
            CompoundTransformer(tiny(**bad))
    with pytest.raises(ValueError):
        config_for("huge", SIZES)


def test_small_fits_the_size_budget_and_large_is_large():
    small = CompoundTransformer(config_for("small", REALISTIC_SIZES))
    assert small.num_params() * 4 <= 20 * 1024 * 1024
    assert SMALL.block_size >= 16 * 60 // 2            # ≥ 16 bars at 30 tokens a bar
    with torch.device("meta"):
        large = CompoundTransformer(LARGE.with_sizes(REALISTIC_SIZES))
    assert large.num_params() > 30_000_000


def test_optimizer_groups_cover_every_parameter_once():
    model = CompoundTransformer(tiny(), seed=0)
    opt = model.configure_optimizer(0.1, 1e-3)
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert id(model.h[0].attn.c_attn.weight) in decayed and id(model.wpe.weight) not in decayed
