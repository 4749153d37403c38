"""Token probes in the benchmark file (format version 2): round trip, batches, every token rule,
and version-1 files still read.

Each invalid file is written valid and then broken in exactly one place with h5py, as in
test_bench_format.py, so each test pins one rule of docs/benchmark-format.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from zcnas.bench.format import FORMAT_VERSION, open_benchmark, write_benchmark
from zcnas.bench.tokens import TokenProbe
from zcnas.errors import BenchmarkError
from zcnas.spaces import get_space

SPACE = get_space("nasbert")
ARCHS = [SPACE.example, "h128|LT:DFT:2:512x1|DSC:9:4:1024x3"]
P, L, VOCAB = 10, 12, 1000


def token_probe(**overrides) -> TokenProbe:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(P, L)).astype(np.int32)
    mask = np.ones((P, L), dtype=np.uint8)
    mask[3, 8:] = 0  # one padded sequence
    ids[3, 8:] = 0
    values = dict(
        ids=ids,
        attention_mask=mask,
        vocab_size=VOCAB,
        labels=np.arange(P) % 2,
        attrs={"tokenizer": "test ids", "text": "none"},
        label_attrs={"description": "uniform random surrogate labels"},
    )
    values.update(overrides)
    return TokenProbe(**values)


def write_tokens(path: Path, probe: TokenProbe | None = None, **overrides) -> Path:
    arguments = dict(
        name="tok",
        search_space="nasbert",
        dataset="glue",
        num_classes=2,
        encodings=ARCHS,
        targets={"glue": np.array([74.7, 70.1])},
        source="tests/test_token_probe.py",
        extra_attrs={"space_options": json.dumps(SPACE.small_options)},
        probe_tokens=probe if probe is not None else token_probe(),
    )
    arguments.update(overrides)
    return write_benchmark(path, **arguments)


@pytest.fixture
def tok(tmp_path) -> Path:
    return write_tokens(tmp_path / "tok.h5")


def break_file(path: Path, change) -> Path:
    with h5py.File(path, "r+") as file:
        change(file)
    return path


def replace(file: h5py.File, name: str, data) -> None:
    attrs = dict(file[name].attrs)
    del file[name]
    file.create_dataset(name, data=data)
    file[name].attrs.update(attrs)


def test_roundtrip_and_layout(tok):
    b = open_benchmark(tok)
    assert b.probe_kind == "tokens" and b.probe_images is None and b.probe_labels is None
    probe = b.probe_tokens
    np.testing.assert_array_equal(probe.ids, token_probe().ids)
    np.testing.assert_array_equal(probe.attention_mask, token_probe().attention_mask)
    np.testing.assert_array_equal(probe.labels, np.arange(P) % 2)
    assert probe.vocab_size == VOCAB and probe.attrs["tokenizer"] == "test ids"
    assert probe.label_attrs["description"].startswith("uniform random")
    with h5py.File(tok, "r") as file:
        assert file.attrs["format_version"] == FORMAT_VERSION == 2
        assert file["probe"].attrs["kind"] == "tokens"
        assert set(file["probe"]) == {"ids", "attention_mask", "y"}
        assert file["probe/ids"].attrs["vocab_size"] == VOCAB
        assert file["probe/attention_mask"].dtype == np.uint8
    summary = b.summary()
    assert summary["probe_kind"] == "tokens" and summary["probe_shape"] == [P, L]
    assert summary["probe_vocab_size"] == VOCAB


def test_probe_batch_gives_ids_and_mask_and_labels_of_the_same_rows(tok):
    b = open_benchmark(tok)
    ids, mask = b.probe_batch(4)
    assert ids.dtype == mask.dtype == torch.int64 and ids.shape == mask.shape == (4, L)
    assert torch.equal(mask[3, 8:], torch.zeros(4, dtype=torch.int64))
    ids, mask = b.probe_batch(6, seed=3)
    labels = b.probe_batch_labels(6, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(P, size=6, replace=False))
    assert ids.tolist() == b.probe_tokens.ids[rows].tolist()
    assert labels.tolist() == (rows % 2).tolist()
    with pytest.raises(BenchmarkError, match=rf"batch of {P + 1} sequences .* holds {P} probe sequences"):
        b.probe_batch(P + 1)


def test_a_token_probe_may_have_no_labels(tmp_path):
    b = open_benchmark(write_tokens(tmp_path / "t.h5", token_probe(labels=None)))
    assert b.probe_batch_labels(3) is None


def test_a_scoring_run_of_tokens_feeds_ids_and_mask(tok, tmp_path):
    from zcnas.run.runner import JobOptions, run_job

    store = run_job(tok, tmp_path / "run.h5", JobOptions(proxies="params,grad_norm,nwot", batch_size=4, seed=0))
    assert store.done_count() == 2
    for proxy in ("params", "grad_norm", "nwot"):
        assert np.isfinite(store.scores[proxy]).all(), proxy


def test_a_run_refuses_before_any_work_what_does_not_apply(tok, tmp_path):
    from zcnas.errors import ProxyError
    from zcnas.run.runner import JobOptions, run_job

    with pytest.raises(ProxyError, match=r"^Proxy flops does not apply to token networks such as nasbert's: .*"
                       r"`zcnas proxies --space nasbert` lists those that do\.$"):
        run_job(tok, tmp_path / "run.h5", JobOptions(proxies="params,flops", batch_size=4))
    unlabelled = write_tokens(tmp_path / "u.h5", token_probe(labels=None))
    with pytest.raises(ProxyError, match=r"Proxy grad_norm needs labels, but the probe batch has none"):
        run_job(unlabelled, tmp_path / "run2.h5", JobOptions(proxies="params,grad_norm", batch_size=4))
    assert not (tmp_path / "run.h5").exists() and not (tmp_path / "run2.h5").exists()
    store = run_job(unlabelled, tmp_path / "run3.h5", JobOptions(proxies="params,head_confidence", batch_size=4))
    assert store.done_count() == 2


def test_version_1_files_are_still_read(tmp_path):
    from conftest import make_tiny_benchmark

    path = make_tiny_benchmark(tmp_path / "v1.h5")

    def downgrade(file):
        file.attrs["format_version"] = 1
        del file["probe"].attrs["kind"]
        del file.attrs["created"]  # version 1 did not require it

    break_file(path, downgrade)
    b = open_benchmark(path)
    assert b.probe_kind == "images" and b.probe_images.shape[0] == 16


def test_version_2_requires_the_probe_kind(tok):
    break_file(tok, lambda f: f["probe"].attrs.__delitem__("kind"))
    with pytest.raises(BenchmarkError, match=r"probe group whose kind attribute is None; .*'images' or 'tokens'"):
        open_benchmark(tok)


def test_version_2_requires_source_and_created(tok):
    break_file(tok, lambda f: f.attrs.__delitem__("created"))
    with pytest.raises(BenchmarkError, match=r"lacks the root attribute 'created'"):
        open_benchmark(tok)


@pytest.mark.parametrize("name", ["ids", "attention_mask"])
def test_missing_token_dataset_is_named(tok, name):
    break_file(tok, lambda f: f["probe"].__delitem__(name))
    with pytest.raises(BenchmarkError, match=rf"token probe without the dataset 'probe/{name}'"):
        open_benchmark(tok)


def test_missing_vocab_size(tok):
    break_file(tok, lambda f: f["probe/ids"].attrs.__delitem__("vocab_size"))
    with pytest.raises(BenchmarkError, match=r"lacks the probe/ids attribute 'vocab_size'"):
        open_benchmark(tok)


@pytest.mark.parametrize("bad, where", [(VOCAB, VOCAB), (-1, -1)])
def test_ids_outside_the_vocabulary(tok, bad, where):
    ids = token_probe().ids.copy()
    ids[2, 5] = bad
    break_file(tok, lambda f: replace(f, "probe/ids", ids))
    with pytest.raises(BenchmarkError, match=rf"token ids from -?\d+ to \d+, outside \[0, {VOCAB}\)"):
        open_benchmark(tok)


def test_float_ids_are_refused(tok):
    break_file(tok, lambda f: replace(f, "probe/ids", token_probe().ids.astype(np.float32)))
    with pytest.raises(BenchmarkError, match=r"probe ids of type float32 .* must be integers \(N, L\)"):
        open_benchmark(tok)


def test_mask_of_another_shape(tok):
    break_file(tok, lambda f: replace(f, "probe/attention_mask", np.ones((P, L - 1), dtype=np.uint8)))
    with pytest.raises(BenchmarkError, match=rf"attention_mask of shape \({P}, {L - 1}\) for probe ids of shape"):
        open_benchmark(tok)


def test_mask_must_be_zero_or_one(tok):
    mask = np.ones((P, L), dtype=np.uint8)
    mask[0, 0] = 2
    break_file(tok, lambda f: replace(f, "probe/attention_mask", mask))
    with pytest.raises(BenchmarkError, match=r"attention_mask that is not all 0 and 1"):
        open_benchmark(tok)


def test_a_sequence_with_nothing_to_attend_to(tok):
    mask = np.ones((P, L), dtype=np.uint8)
    mask[4] = 0
    break_file(tok, lambda f: replace(f, "probe/attention_mask", mask))
    with pytest.raises(BenchmarkError, match=r"probe sequence 4 whose attention_mask is all 0"):
        open_benchmark(tok)


def test_vocabulary_larger_than_the_networks_embedding(tmp_path):
    probe = token_probe(vocab_size=SPACE.small_options["vocab_size"] + 1)
    with pytest.raises(BenchmarkError, match=r"vocabulary of 1001 tokens, but its networks embed 1000"):
        write_tokens(tmp_path / "t.h5", probe)
    # Without space_options the networks embed the space's default 30522: fine.
    write_tokens(tmp_path / "t.h5", probe, extra_attrs={})


def test_sequences_longer_than_the_position_table(tmp_path):
    long = token_probe(ids=np.ones((2, 65), dtype=np.int32), attention_mask=np.ones((2, 65), dtype=np.uint8),
                       labels=None)
    with pytest.raises(BenchmarkError, match=r"do not fit the nasbert space: .*1\.\.64 tokens"):
        write_tokens(tmp_path / "t.h5", long)


def test_labels_outside_num_classes(tok):
    break_file(tok, lambda f: replace(f, "probe/y", np.full(P, 2, dtype=np.int64)))
    with pytest.raises(BenchmarkError, match=r"probe label 2 at position 0, outside \[0, 2\)"):
        open_benchmark(tok)


def test_token_probe_for_an_image_space_and_images_for_a_token_space(tmp_path):
    with pytest.raises(BenchmarkError, match=r"has a token probe, but the nb201 space's networks take image input"):
        write_benchmark(
            tmp_path / "x.h5", name="x", search_space="nb201", dataset="d", num_classes=2,
            encodings=["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], targets={"a": np.zeros(1)},
            source="test", probe_tokens=token_probe(),
        )
    with pytest.raises(BenchmarkError, match=r"probe images of shape .* do not fit the nasbert space"):
        write_tokens(
            tmp_path / "y.h5", probe=None, probe_tokens=None,
            probe_images=np.zeros((2, 8, 8, 3), dtype=np.uint8), probe_labels=np.zeros(2, dtype=np.int64),
            probe_mean=(0.5,) * 3, probe_std=(0.2,) * 3,
        )


def test_images_and_tokens_together_are_refused(tmp_path):
    with pytest.raises(BenchmarkError, match=r"give probe images or probe tokens, not both"):
        write_tokens(tmp_path / "t.h5", probe_images=np.zeros((2, 8, 8, 3), dtype=np.uint8))
