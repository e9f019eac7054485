"""The on-disk embedding cache (filled by ``linq_eval.run.cached_encoder.CachedEncoder``).

What is stored: each input's raw pooled vector (before L2 normalisation, which depends on the
task type) in ``embedding_precision``, under the sha256 of the encoder's identity
(``cache_identity``) and the exact input text with its instruction prefix (README.md, "The
embedding cache").

Layout, one folder per encoder identity::

    <cache_dir>/<org__model>-<identity hash>/
        identity.json                 # the settings the hash covers, for people
        chunks/<id>.vec.npy           # [rows, dim], float32 or float16 (float32 on fp16 overflow)
        chunks/<id>.keys.npy          # uint64 [rows, 2]: the first 16 bytes of each key
        chunks/<id>.json              # rows, dim, dtype and the sha256 of both .npy files

Every file is written atomically (``linq_eval.atomic``), the sidecar last: a chunk without a
sidecar is unfinished and ignored. A chunk whose files do not match the sidecar's checksums
(corrupt or truncated) is reported, moved aside (``*.corrupt``) and its texts are encoded
again. Vectors are read through memory maps, so the cache never needs to fit in RAM, and a
chunk's checksum is checked the first time this process reads it.

Exactness: embeddings are always used as stored. A freshly computed chunk is rounded to the
storage precision before use, exactly as it is stored, so a resumed or cached run gives the same
scores as an uninterrupted one. The texts to encode are cut into chunks of a fixed number of texts
(longest first), so the chunks computed after a restart are the ones an uninterrupted run
would have computed; each chunk is one call of the encoder's batching, whichever process of
a multi-GPU run embeds it (``linq_eval.run.distributed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linq_eval import run_record
from linq_eval.atomic import atomic_save_npy, atomic_write_json, sha256_file
from linq_eval.defaults import DEFAULT_CHUNK_TEXTS
from linq_eval.errors import ConfigError
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.provenance import now

_logger = logging.getLogger(__name__)

_FORMAT_VERSION = 2
"""Version of the layout above; part of the identity, so a new layout starts a new folder
(2: a float32 model's embeddings are stored in float32, no longer rounded to float16)."""

_HALF_PRECISION_STORAGE = "float16"
"""How a half-precision model's embeddings are stored: exact for float16 outputs, and for
bfloat16 ones within float16's normal range; half the size of float32."""

_FP16_MAX = float(np.finfo(np.float16).max)
_MAX_OPEN_CHUNKS = 256


def cache_identity(settings: Mapping[str, Any], device_type: str) -> dict[str, Any]:
    """The part of an encoder's settings that determines its raw embeddings."""
    identity = run_record.embedding_identity(settings)
    identity["device_type"] = device_type
    identity["format"] = _FORMAT_VERSION
    return identity


def embedding_precision(dtype: Any) -> str:
    """How the embeddings of a model computing in ``dtype`` are stored, and so used, when they
    go through the cache: as computed (float32) for a float32 model, whose published scores were
    made from float32 embeddings; ``_HALF_PRECISION_STORAGE`` for a float16 or bfloat16 model."""
    name = str(dtype).replace("torch.", "")
    return "float32" if name in ("None", "float32") else _HALF_PRECISION_STORAGE


def round_to_storage(vectors: np.ndarray, precision: str) -> tuple[np.ndarray, type]:
    """``vectors`` exactly as the cache stores them at ``precision``, and the storage dtype.

    float32 unchanged; float16 unless a value is outside float16's range (then float32).
    """
    v = np.asarray(vectors, dtype=np.float32)
    if precision == "float32":
        return v, np.float32
    if v.size and not (np.isfinite(v).all() and np.abs(v).max() <= _FP16_MAX):
        return v, np.float32
    return v.astype(np.float16).astype(np.float32), np.float16


# --------------------------------------------------------------------------- the index


@dataclass
class _Segment:
    """Keys of some chunks, sorted by their first 8 bytes, with where each one lives."""

    hi: np.ndarray
    lo: np.ndarray
    chunk: np.ndarray
    row: np.ndarray

    @classmethod
    def sorted(cls, hi: np.ndarray, lo: np.ndarray, chunk: np.ndarray, row: np.ndarray) -> _Segment:
        order = np.lexsort((lo, hi))
        return cls(hi[order], lo[order], chunk[order], row[order])

    def merge(self, other: _Segment) -> _Segment:
        mine, theirs = vars(self).values(), vars(other).values()
        return _Segment.sorted(*(np.concatenate(pair) for pair in zip(mine, theirs, strict=True)))

    def __len__(self) -> int:
        return len(self.hi)


@dataclass
class _Chunk:
    name: str
    rows: int
    dim: int
    dtype: str
    vec_sha256: str
    verified: bool = False


@dataclass
class _CacheStats:
    """What the cache did in this process."""

    hits: int = 0
    misses: int = 0
    chunks_written: int = 0
    corrupt_chunks: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class EmbeddingCache:
    """Raw embeddings on disk, keyed by encoder identity and exact input text.

    ``lookup`` finds stored vectors; ``put`` stores one chunk. Several processes may share a
    cache folder: chunks are content-addressed and written atomically, and each ``lookup``
    first picks up chunks that other processes finished.
    """

    def __init__(
        self, root: str | os.PathLike[str], identity: Mapping[str, Any], *, writable: bool = True
    ) -> None:
        self.identity = dict(identity)
        blob = json.dumps(self.identity, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(blob).hexdigest()
        self.namespace = digest[:16]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(self.identity.get("model") or "model"))
        self.folder = Path(root) / f"{slug.replace('/', '__')}-{self.namespace}"
        self.chunk_dir = self.folder / "chunks"
        self.writable = writable
        self.stats = _CacheStats()
        self.precision = embedding_precision(self.identity.get("dtype"))
        self._hasher = hashlib.sha256(digest.encode())
        self._chunks: list[_Chunk] = []
        self._by_name: dict[str, int] = {}
        self._ok = np.zeros(0, dtype=bool)
        self._segments: list[_Segment] = []
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()
        self._dim: int | None = None
        if writable:
            self.chunk_dir.mkdir(parents=True, exist_ok=True)
            if not (self.folder / "identity.json").is_file():
                atomic_write_json(self.folder / "identity.json", self.identity)
        self.refresh()

    # ------------------------------------------------------------------ keys
    def keys(self, texts: Sequence[str]) -> np.ndarray:
        """uint64 ``[len(texts), 2]``: the first 16 bytes of each text's sha256 key."""
        buf = bytearray(16 * len(texts))
        for i, text in enumerate(texts):
            h = self._hasher.copy()
            h.update(text.encode("utf-8", "surrogatepass"))
            buf[16 * i : 16 * i + 16] = h.digest()[:16]
        return np.frombuffer(bytes(buf), dtype="<u8").reshape(len(texts), 2)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return sum(c.rows for c, ok in zip(self._chunks, self._ok, strict=True) if ok)

    def refresh(self) -> None:
        """Index the finished chunks that are not indexed yet (also other processes')."""
        names = sorted(p.name[: -len(".json")] for p in self.chunk_dir.glob("*.json"))
        for name in names:
            if name not in self._by_name:
                self._index_chunk(name)

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        d = self.chunk_dir
        return d / f"{name}.vec.npy", d / f"{name}.keys.npy", d / f"{name}.json"

    def _index_chunk(self, name: str) -> None:
        vec_path, keys_path, side_path = self._paths(name)
        try:
            side = json.loads(side_path.read_text(encoding="utf-8"))
            if side.get("format") != _FORMAT_VERSION or side.get("namespace") != self.namespace:
                raise ValueError("sidecar of another format or identity")
            rows, dim = int(side["rows"]), int(side["dim"])
            if sha256_file(keys_path) != side["keys_sha256"]:
                raise ValueError("keys file does not match its checksum")
            keys = np.load(keys_path, allow_pickle=False)
            if keys.shape != (rows, 2) or keys.dtype != np.dtype("<u8"):
                raise ValueError(f"keys of shape {keys.shape}, expected ({rows}, 2)")
            if not vec_path.is_file():
                raise ValueError("vectors file is missing")
            if self._dim is not None and dim != self._dim:
                raise ValueError(f"dim {dim}, other chunks have {self._dim}")
        except FileNotFoundError:
            return  # removed by another process meanwhile
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._quarantine(name, str(exc))
            return
        self._dim = dim
        idx = len(self._chunks)
        self._chunks.append(_Chunk(name, rows, dim, str(side["dtype"]), side["vec_sha256"]))
        self._by_name[name] = idx
        self._ok = np.append(self._ok, True)
        chunk, row = np.full(rows, idx, np.int32), np.arange(rows, dtype=np.int32)
        self._add_segment(_Segment.sorted(keys[:, 0], keys[:, 1], chunk, row))

    def _add_segment(self, segment: _Segment) -> None:
        # Log-structured merging: O(log n) segments, each key re-sorted O(log n) times.
        self._segments.append(segment)
        while len(self._segments) > 1 and len(self._segments[-2]) <= 2 * len(self._segments[-1]):
            last = self._segments.pop()
            self._segments[-1] = self._segments[-1].merge(last)

    def _quarantine(self, name: str, why: str) -> None:
        self.stats.corrupt_chunks += 1
        _logger.warning(
            "Embedding cache chunk %s in %s is unusable (%s): moved aside, its texts will be "
            "encoded again",
            name,
            self.chunk_dir,
            why,
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for path in self._paths(name):
            with contextlib.suppress(OSError):
                path.rename(path.with_name(f"{path.name}.corrupt-{stamp}"))
        idx = self._by_name.get(name)
        if idx is not None:
            self._ok[idx] = False
            self._open.pop(idx, None)
        else:
            self._by_name[name] = -1  # never index it again in this process

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk, row) of each key; -1 where no usable chunk holds it."""
        n = len(keys)
        chunk = np.full(n, -1, dtype=np.int64)
        row = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return chunk, row
        hi, lo = keys[:, 0], keys[:, 1]
        for seg in self._segments:
            active = np.flatnonzero(chunk < 0)
            if active.size == 0:
                break
            pos = np.searchsorted(seg.hi, hi[active], side="left")
            while active.size:  # walk over equal first halves (64-bit prefix collisions)
                inside = pos < len(seg)
                active, pos = active[inside], pos[inside]
                same = seg.hi[pos] == hi[active]
                active, pos = active[same], pos[same]
                match = (seg.lo[pos] == lo[active]) & self._ok[seg.chunk[pos]]
                chunk[active[match]] = seg.chunk[pos[match]]
                row[active[match]] = seg.row[pos[match]]
                active, pos = active[~match], pos[~match] + 1
        return chunk, row

    def _array(self, idx: int) -> np.ndarray | None:
        """The chunk's vectors (memory-mapped), checked on first use; None if corrupt."""
        if idx in self._open:
            self._open.move_to_end(idx)
            return self._open[idx]
        info = self._chunks[idx]
        vec_path = self._paths(info.name)[0]
        try:
            if not info.verified:
                if sha256_file(vec_path) != info.vec_sha256:
                    raise ValueError("vectors file does not match its checksum")
                info.verified = True
            arr = np.load(vec_path, mmap_mode="r", allow_pickle=False)
            if arr.shape != (info.rows, info.dim) or arr.dtype != np.dtype(info.dtype):
                raise ValueError(f"vectors of shape {arr.shape} {arr.dtype}")
        except (OSError, ValueError) as exc:
            self._quarantine(info.name, str(exc))
            return None
        self._open[idx] = arr
        if len(self._open) > _MAX_OPEN_CHUNKS:
            self._open.popitem(last=False)
        return arr

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, vectors)``: a bool mask over ``keys`` and float32 rows of the found ones."""
        self.refresh()
        while True:
            chunk, row = self._find(keys)
            hit_chunks = np.unique(chunk[chunk >= 0])
            arrays = {int(c): self._array(int(c)) for c in hit_chunks}
            if all(a is not None for a in arrays.values()):
                break  # else a chunk turned out corrupt: look its keys up elsewhere
        found = chunk >= 0
        dim = self._dim or 0
        vectors = np.empty((int(found.sum()), dim), dtype=np.float32)
        where = np.flatnonzero(found)
        for c, arr in arrays.items():
            sel = np.flatnonzero(chunk[where] == c)
            rows = row[where[sel]]
            order = np.argsort(rows, kind="stable")  # read the map in file order
            vectors[sel[order]] = np.asarray(arr[rows[order]], dtype=np.float32)
        self.stats.hits += len(vectors)
        self.stats.misses += len(keys) - len(vectors)
        return found, vectors

    # ------------------------------------------------------------------ writing
    def put(self, keys: np.ndarray, vectors: np.ndarray) -> str | None:
        """Store one chunk (vectors already rounded by ``round_to_storage``); its id.

        Non-finite vectors are not stored (the caller raises on them). Returns None then.
        """
        if not self.writable:
            raise ConfigError(f"The embedding cache {self.folder} was opened read-only")
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if len(keys) == 0 or not np.isfinite(vectors).all():
            return None
        stored, dtype = round_to_storage(vectors, self.precision)
        name = hashlib.sha256(np.ascontiguousarray(keys).tobytes()).hexdigest()[:32]
        idx = self._by_name.get(name)
        if idx is not None and idx >= 0 and self._ok[idx]:
            return name
        vec_path, keys_path, side_path = self._paths(name)
        vec_sha = atomic_save_npy(vec_path, stored.astype(dtype))
        keys_sha = atomic_save_npy(keys_path, np.ascontiguousarray(keys, dtype="<u8"))
        atomic_write_json(
            side_path,
            {
                "format": _FORMAT_VERSION,
                "namespace": self.namespace,
                "rows": len(keys),
                "dim": int(vectors.shape[1]),
                "dtype": np.dtype(dtype).name,
                "vec_sha256": vec_sha,
                "keys_sha256": keys_sha,
                "created": now(),
            },
        )
        self.stats.chunks_written += 1
        self._by_name.pop(name, None)
        self._index_chunk(name)
        return name


def open_cache(
    root: str | os.PathLike[str], encoder: DecoderEncoder, *, writable: bool = True
) -> EmbeddingCache:
    """The cache folder of this encoder's identity under ``root``."""
    return EmbeddingCache(
        root, cache_identity(encoder.settings(), encoder.device.type), writable=writable
    )


__all__ = [
    "DEFAULT_CHUNK_TEXTS",
    "EmbeddingCache",
    "cache_identity",
    "embedding_precision",
    "open_cache",
    "round_to_storage",
]
