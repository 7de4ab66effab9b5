"""Dense retrieval: passage vectors in the library, an ANN index file beside it (or pgvector's, on PostgreSQL).

The ``passage_vectors`` table is the source of truth. ``DenseIndex`` keeps a
usearch HNSW index (cosine) in ``<library>.<model>.usearch`` with a JSON
sidecar naming the library version it was built from; when the library has
changed since (ingest, deletion, retraction, new vectors) the file is rebuilt
from the table, so it is always in step and can be deleted at any time.
Without usearch installed (it comes with the ``dense`` and ``static`` extras),
the search is exact: every vector is held in memory and compared (fine for
libraries of tens of thousands of passages). Vectors of retracted documents
are never put in the index. Imports ``store`` and ``embed`` (protocol only);
usearch and numpy are imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcite.store import Store

if TYPE_CHECKING:
    from medcite.embed import Embedder

__all__ = ["DenseIndex", "embed_passages"]


def embed_passages(
    store: Store, embedder: Embedder, *, batch: int = 128, on_progress: Callable[[int, int], None] | None = None
) -> int:
    """Compute and store vectors for every passage that has none for this embedder.

    Writes to the store (one transaction per batch). ``on_progress(done, total)``
    is called after each batch.

    Returns:
        The number of passages embedded.
    """
    import numpy as np

    total = store.count_missing_vectors(embedder.name)
    done = 0
    while True:
        rows = store.passages_missing_vectors(embedder.name, limit=batch)
        if not rows:
            return done
        vectors = np.asarray(embedder.embed([text for _, text in rows]), dtype=np.float32)
        store.write_vectors(embedder.name, [(rowid, vectors[i].tobytes()) for i, (rowid, _) in enumerate(rows)])
        done += len(rows)
        if on_progress is not None:
            on_progress(done, total)


class DenseIndex:
    """Nearest-neighbour search over one embedder's passage vectors."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in embedder.name)
        # A PostgreSQL library searches its own pgvector index (Store.search_vectors): no file beside it.
        self.server_side = store.dialect == "postgresql"
        library = Path(store.path)
        self.path = None if self.server_side else library.with_name(f"{library.name}.{safe}.usearch")
        self._meta_path = None if self.path is None else self.path.with_name(self.path.name + ".json")
        self._index: Any = None
        self._version = -1

    def _load(self) -> Any:
        try:
            from usearch.index import Index
        except ImportError:  # no ANN library: exact search over the vectors in memory
            return self._load_exact()

        version = self.store.library_version()
        if self._index is not None and self._version == version:
            return self._index
        meta: dict[str, Any] = {}
        if self._meta_path.exists() and self.path.exists():
            try:
                meta = json.loads(self._meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
        if meta.get("library_version") == version and meta.get("dim") == self.embedder.dim:
            self._index = Index.restore(str(self.path), view=True)
        else:
            self._index = self._build(version)
        self._version = version
        return self._index

    def _load_exact(self) -> Any:
        import numpy as np

        version = self.store.library_version()
        if self._index is not None and self._version == version:
            return self._index
        keys: list[int] = []
        blocks = []
        for rows in self.store.iter_vectors(self.embedder.name):
            keys += [rowid for rowid, _ in rows]
            blocks.append(np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1))
        matrix = np.vstack(blocks) if blocks else np.zeros((0, self.embedder.dim), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._index = _ExactIndex(np.array(keys, dtype=np.int64), matrix / np.maximum(norms, 1e-12))
        self._version = version
        return self._index

    def _build(self, version: int) -> Any:
        import numpy as np
        from usearch.index import Index

        index = Index(ndim=self.embedder.dim, metric="cos", dtype="f32")
        for rows in self.store.iter_vectors(self.embedder.name):
            keys = np.array([rowid for rowid, _ in rows], dtype=np.uint64)
            vectors = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
            index.add(keys, vectors)
        try:
            index.save(str(self.path))
            self._meta_path.write_text(json.dumps({"library_version": version, "dim": self.embedder.dim}))
        except OSError:
            pass  # a read-only folder: keep the index in memory only
        return index

    def search(self, query: str, *, limit: int) -> list[tuple[int, float]]:
        """Return ``(passage rowid, cosine similarity)`` pairs, best first, for a query text.

        Args:
            query: The query, embedded with the same model as the passages.
            limit: How many neighbours to return at most.
        """
        if self.server_side:
            import numpy as np

            vector = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
            return self.store.search_vectors(self.embedder.name, vector.tobytes(), limit=limit)
        index = self._load()
        if len(index) == 0:
            return []
        vector = self.embedder.embed([query])[0]
        if isinstance(index, _ExactIndex):
            return index.search(vector, limit)
        matches = index.search(vector, min(limit, len(index)))
        return [
            (int(key), 1.0 - float(distance)) for key, distance in zip(matches.keys, matches.distances, strict=True)
        ]


class _ExactIndex:
    """Exact cosine search over unit-normalised vectors in memory (the fallback when usearch is missing)."""

    def __init__(self, keys: Any, matrix: Any) -> None:
        self.keys = keys
        self.matrix = matrix

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, vector: Any, limit: int) -> list[tuple[int, float]]:
        import numpy as np

        query = np.asarray(vector, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        similarities = self.matrix @ query
        count = min(limit, len(self.keys))
        top = np.argpartition(-similarities, count - 1)[:count]
        top = top[np.lexsort((self.keys[top], -similarities[top]))]
        return [(int(self.keys[i]), float(similarities[i])) for i in top]
