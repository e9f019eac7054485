"""The embedding cache and the atomic-file helpers: fast unit tests on tmp_path.

Integration with the encoder uses the tiny random Mistral with Mistral's real tokenizer.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from linq_eval.atomic import (
    FileLock,
    LockHeldError,
    atomic_save_npy,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)
from linq_eval.run.cache import (
    EmbeddingCache,
    cache_identity,
    embedding_precision,
    open_cache,
    round_to_storage,
)
from linq_eval.run.cached_encoder import CachedEncoder, chunk_order

IDENTITY = {"model": "org/model", "revision": "abc", "dtype": "float32", "max_length": 512}


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


# --------------------------------------------------------------------------- atomic files


def test_atomic_writes_leave_only_the_target(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_json(tmp_path / "b.json", {"x": [1, 2]})
    digest = atomic_save_npy(tmp_path / "c.npy", np.arange(10, dtype=np.float16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npy"]
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}
    assert digest == sha256_file(tmp_path / "c.npy")
    assert np.load(tmp_path / "c.npy").tolist() == list(range(10))


def test_atomic_write_failure_keeps_the_old_content(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        _fail_midway(path)
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _fail_midway(path):
    from linq_eval.atomic import atomic_open

    with atomic_open(path, "w") as f:
        f.write('{"v": 2')
        raise TypeError("boom")


def test_lock_conflict_names_the_holder(tmp_path):
    first = FileLock(tmp_path / "t.lock", what="task SciFact").acquire()
    with pytest.raises(LockHeldError) as err:
        FileLock(tmp_path / "t.lock", what="task SciFact").acquire(timeout=0)
    assert "task SciFact is locked by pid" in str(err.value)
    assert err.value.holders[0]["pid"] == os.getpid()
    first.release()
    FileLock(tmp_path / "t.lock").acquire().release()  # free again


def test_lock_is_released_when_its_process_is_killed(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from linq_eval.atomic import FileLock
        FileLock({str(tmp_path / "k.lock")!r}).acquire()
        print("locked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert "locked" in proc.stdout and proc.returncode == -9
    FileLock(tmp_path / "k.lock").acquire(timeout=0).release()


# --------------------------------------------------------------------------- the cache itself


def test_round_to_storage_is_fp16_and_idempotent():
    v = vectors(5)
    once, dtype = round_to_storage(v, "float16")
    assert dtype is np.float16 and once.dtype == np.float32
    np.testing.assert_array_equal(once, v.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(round_to_storage(once, "float16")[0], once)
    big = v * 1e5  # beyond float16's range: kept in float32
    kept, dtype = round_to_storage(big, "float16")
    assert dtype is np.float32
    np.testing.assert_array_equal(kept, big)


def test_float32_models_are_stored_as_computed_half_precision_ones_in_float16(tmp_path):
    assert embedding_precision("float32") == embedding_precision(torch.float32) == "float32"
    assert embedding_precision(torch.float16) == embedding_precision("bfloat16") == "float16"
    v = vectors(6)
    kept, dtype = round_to_storage(v, "float32")
    assert dtype is np.float32
    np.testing.assert_array_equal(kept, v)
    for model_dtype, stored in (("float32", np.float32), ("float16", np.float16)):
        cache = EmbeddingCache(tmp_path / model_dtype, {**IDENTITY, "dtype": model_dtype})
        keys = cache.keys([f"t{i}" for i in range(6)])
        name = cache.put(keys, round_to_storage(v, cache.precision)[0])
        assert np.load(cache.chunk_dir / f"{name}.vec.npy").dtype == stored
        found, got = cache.lookup(keys)
        assert found.all()
        np.testing.assert_array_equal(got, round_to_storage(v, cache.precision)[0])


def test_put_then_lookup_returns_exactly_what_was_stored(tmp_path):
    cache = EmbeddingCache(tmp_path, IDENTITY)
    texts = [f"text {i}" for i in range(50)]
    v, _ = round_to_storage(vectors(50), cache.precision)
    keys = cache.keys(texts)
    assert keys.shape == (50, 2) and keys.dtype == np.uint64
    np.testing.assert_array_equal(keys, cache.keys(texts))  # deterministic
    cache.put(keys[:30], v[:30])
    found, got = cache.lookup(cache.keys(texts[::-1]))
    assert found.tolist() == [False] * 20 + [True] * 30
    np.testing.assert_array_equal(got, v[:30][::-1])
    assert len(cache) == 30

    other = EmbeddingCache(tmp_path, IDENTITY)  # a second process sees the chunk
    found, got = other.lookup(keys)
    assert found.sum() == 30
    np.testing.assert_array_equal(got, v[:30])


def test_identity_separates_models_and_settings(tmp_path):
    a = EmbeddingCache(tmp_path, IDENTITY)
    b = EmbeddingCache(tmp_path, {**IDENTITY, "max_length": 256})
    assert a.folder != b.folder
    a.put(a.keys(["x"]), vectors(1))
    assert not b.lookup(b.keys(["x"]))[0].any()
    assert a.keys(["x"]).tolist() != b.keys(["x"]).tolist()
    ident = cache_identity({"model": "m", "pooling": "last", "device": "cuda:3"}, "cuda")
    assert ident["device_type"] == "cuda" and "device" not in ident


def test_many_chunks_stay_searchable(tmp_path):
    cache = EmbeddingCache(tmp_path, IDENTITY)
    texts = [f"t{i}" for i in range(1000)]
    keys = cache.keys(texts)
    v = vectors(1000, dim=4)
    for start in range(0, 1000, 37):
        cache.put(keys[start : start + 37], v[start : start + 37])
    assert len(cache._segments) <= 12  # log-structured merging
    found, got = cache.lookup(keys)
    assert found.all()
    np.testing.assert_array_equal(got, round_to_storage(v, cache.precision)[0])


def test_prefix_collisions_are_resolved_by_the_second_half(tmp_path):
    cache = EmbeddingCache(tmp_path, IDENTITY)
    keys = np.array([[5, 1], [5, 2], [5, 3], [7, 1]], dtype=np.uint64)
    v = vectors(4)
    cache.put(keys[:3], v[:3])
    found, got = cache.lookup(np.array([[5, 3], [5, 9], [7, 1], [5, 1]], dtype=np.uint64))
    assert found.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(got, round_to_storage(v[[2, 0]], cache.precision)[0])


@pytest.mark.parametrize("damage", ["flip", "truncate", "keys"])
def test_corrupt_chunk_is_detected_moved_aside_and_missed(tmp_path, damage, caplog):
    cache = EmbeddingCache(tmp_path, IDENTITY)
    texts = [f"doc {i}" for i in range(20)]
    cache.put(cache.keys(texts[:10]), vectors(10))
    cache.put(cache.keys(texts[10:]), vectors(10, seed=1))
    name = next(iter(cache._by_name))
    vec = cache.chunk_dir / f"{name}.vec.npy"
    if damage == "flip":
        data = bytearray(vec.read_bytes())
        data[-3] ^= 0xFF
        vec.write_bytes(bytes(data))
    elif damage == "truncate":
        vec.write_bytes(vec.read_bytes()[:-40])
    else:
        (cache.chunk_dir / f"{name}.keys.npy").write_bytes(b"\x93NUMPY garbage")
    fresh = EmbeddingCache(tmp_path, IDENTITY)
    with caplog.at_level(logging.WARNING, logger="linq_eval.run.cache"):
        found, _ = fresh.lookup(fresh.keys(texts))
    assert found.sum() == 10  # the damaged chunk's texts are missing, the other is fine
    assert fresh.stats.corrupt_chunks == 1
    assert "unusable" in caplog.text and name in caplog.text
    assert list(cache.chunk_dir.glob(f"{name}*.corrupt-*"))
    assert not (cache.chunk_dir / f"{name}.json").exists()


def test_chunk_without_sidecar_is_unfinished_and_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path, IDENTITY)
    texts = ["a", "b"]
    cache.put(cache.keys(texts), vectors(2))
    (sidecar,) = cache.chunk_dir.glob("*.json")
    sidecar.unlink()  # as if killed between the data files and the sidecar
    fresh = EmbeddingCache(tmp_path, IDENTITY)
    assert not fresh.lookup(fresh.keys(texts))[0].any()
    fresh.put(fresh.keys(texts), vectors(2))  # rewritten under the same name
    assert EmbeddingCache(tmp_path, IDENTITY).lookup(fresh.keys(texts))[0].all()


def test_chunk_order_is_longest_first_and_stable():
    texts = ["aa", "a", "aaaa", "bb", "aaa"]
    assert chunk_order(texts, np.arange(5)).tolist() == [2, 4, 0, 3, 1]
    assert chunk_order(texts, np.array([0, 1, 3])).tolist() == [0, 3, 1]


# --------------------------------------------------------------------------- through the encoder


def sample_texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    words = ["the", "of", "protein", "cell", "gene", "effect", "study", "patients", "risk"]
    return [f"{i} " + " ".join(rng.choice(words, size=int(rng.integers(3, 60)))) for i in range(n)]


def test_cached_encoding_encodes_nothing_the_second_time(tiny_encoder, tmp_path):
    enc = CachedEncoder(tiny_encoder, open_cache(tmp_path, tiny_encoder), chunk_texts=16)
    texts = sample_texts(60) + ["dup", "dup"]
    first = enc.encode_texts(texts, prefix="Q: ", label="t1")
    assert enc.stats.per_task["t1"]["encoded_texts"] == 61
    second = enc.encode_texts(texts, prefix="Q: ", label="t2")
    assert enc.stats.per_task["t2"]["encoded_texts"] == 0
    assert enc.stats.per_task["t2"]["cached_texts"] == 61
    assert enc.stats.per_task["t2"]["tokens"] == 0
    np.testing.assert_array_equal(first, second)
    third = enc.encode_texts(texts, prefix="D: ", label="t3")  # other prefix: other key
    assert enc.stats.per_task["t3"]["encoded_texts"] == 61
    assert not np.array_equal(first, third)


def test_resumed_encoding_equals_uninterrupted(tiny_encoder, tmp_path, monkeypatch):
    """Chunks persisted before a 'kill' plus the rest afterwards == one uninterrupted pass."""
    inner = tiny_encoder
    texts = sample_texts(100)
    full = CachedEncoder(inner, open_cache(tmp_path / "a", inner), chunk_texts=16)
    uninterrupted = full.encode_texts(texts, normalize=False, label="full")

    killed = CachedEncoder(inner, open_cache(tmp_path / "b", inner), chunk_texts=16)
    original_embed = inner.embed_ids
    calls = {"n": 0}

    def dying(ids, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed during the 4th chunk
        return original_embed(ids, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(inner, "embed_ids", dying)
        with pytest.raises(KeyboardInterrupt):
            killed.encode_texts(texts, normalize=False, label="killed")
    assert len(list(killed.cache.chunk_dir.glob("*.json"))) == 3

    resumed_enc = CachedEncoder(inner, open_cache(tmp_path / "b", inner), chunk_texts=16)
    resumed = resumed_enc.encode_texts(texts, normalize=False, label="resumed")  # a new process
    assert inner.stats.per_task["resumed"]["cached_texts"] == 48
    assert inner.stats.per_task["resumed"]["encoded_texts"] == 52
    np.testing.assert_array_equal(resumed, uninterrupted)


def test_chunked_without_cache_matches_cached_rounding(tiny_encoder, tmp_path):
    inner = tiny_encoder
    texts = sample_texts(40)
    chunked = CachedEncoder(inner, None, chunk_texts=8)
    no_cache = chunked.encode_texts(texts, label="nc")
    cached = CachedEncoder(inner, open_cache(tmp_path, inner), chunk_texts=8)
    np.testing.assert_array_equal(no_cache, cached.encode_texts(texts, label="c"))
    # a float32 model: stored as computed, so chunked, cached and plain encoding agree
    assert inner.dtype == torch.float32
    assert chunked.settings()["embedding_precision"] == "float32"
    assert cached.settings()["embedding_precision"] == "float32"
    assert inner.settings()["embedding_precision"] == "float32"
    plain = inner.encode_texts(texts, label="plain")
    np.testing.assert_allclose(plain, no_cache, atol=1e-5)
