"""Input columns become one sparse feature space shared by every task of a study.

Each input column is a *block* of the feature space. A text column is a bag-of-words (or
TF-IDF) block whose vocabulary is fitted on training rows only and shared across the tasks
that read that column:

- ``union``: every word seen in any task's training text (ranked by summed document
  frequency when ``max_features`` caps it);
- ``intersection``: only the words that occur in the training text of every task;
- ``per_task``: one vocabulary per task, each in a block of its own, so each task has its own
  first-layer weights for its words and shares everything above.

A numeric column is a block of width one, standardised with the training rows' mean and
standard deviation. Rows are kept as CSR matrices of the whole space; the training loop makes
a batch dense at once (``densify``), never one row at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from mtl_core.data.readers import DataError

Vocabulary = Literal["union", "intersection", "per_task"]


@dataclass(frozen=True)
class TextFeatures:
    """How a text column becomes features (scikit-learn's CountVectorizer / TF-IDF)."""

    kind: Literal["bow", "tfidf"] = "bow"
    max_features: int | None = 5000
    vocabulary: Vocabulary = "union"
    ngram_max: int = 1
    min_df: int = 1
    lowercase: bool = True


@dataclass
class _Block:
    column: str
    offset: int
    width: int
    tasks: tuple[str, ...]
    words: tuple[str, ...] = ()
    idf: TfidfTransformer | None = None
    mean: float = 0.0
    std: float = 1.0
    config: TextFeatures | None = None


@dataclass
class FeatureSpace:
    """The fitted layout of the input space; ``transform`` maps a task's rows into it."""

    blocks: list[_Block] = field(default_factory=list)

    @property
    def width(self) -> int:
        return sum(b.width for b in self.blocks)

    def fingerprint(self) -> str:
        """A hash of everything that fixes the features (vocabularies, scalers, offsets)."""
        digest = hashlib.sha256()
        for b in self.blocks:
            digest.update(repr((b.column, b.offset, b.width, b.tasks, b.config)).encode())
            digest.update("\x1f".join(b.words).encode())
            digest.update(np.float64([b.mean, b.std]).tobytes())
        return digest.hexdigest()[:16]

    def feature_names(self) -> list[str]:
        """One name per input column of the space: ``column:word`` for text, else the column."""
        names: list[str] = []
        for b in self.blocks:
            if b.words:
                names += [f"{b.column}:{w}" for w in b.words]
            else:
                names += [b.column] * b.width
        return names

    def describe(self) -> list[str]:
        out = []
        for b in self.blocks:
            kind = b.config.kind if b.config else "numeric"
            owners = ",".join(b.tasks)
            out.append(f"{b.column} [{kind}] width {b.width} for {owners}")
        return out

    def layout(self, task: str) -> tuple[int, ...]:
        """Which blocks a task's rows fill: tasks with the same layout get the same matrix."""
        return tuple(i for i, b in enumerate(self.blocks) if task in b.tasks)

    def transform(self, task: str, frame: pd.DataFrame) -> sp.csr_matrix:
        """The task's rows in the whole space; blocks of other tasks stay zero."""
        n = len(frame)
        parts = [
            _transform_block(b, frame)
            if task in b.tasks
            else sp.csr_matrix((n, b.width), dtype=np.float32)
            for b in self.blocks
        ]
        if not parts:
            return sp.csr_matrix((n, 0), dtype=np.float32)
        return sp.hstack(parts, format="csr", dtype=np.float32)


def _transform_block(b: _Block, frame: pd.DataFrame) -> sp.csr_matrix:
    if b.config is None:
        values = (_numeric(frame[b.column], b.column) - b.mean) / b.std
        return sp.csr_matrix(values.reshape(-1, 1).astype(np.float32))
    counts = _vectorizer(b.config, vocabulary=b.words).transform(_text(frame[b.column]))
    if b.idf is not None:
        counts = b.idf.transform(counts)
    return sp.csr_matrix(counts, dtype=np.float32)


def fit_feature_space(
    train_frames: Mapping[str, pd.DataFrame],
    inputs: Mapping[str, Sequence[str]],
    text: Mapping[str, TextFeatures] | None = None,
) -> FeatureSpace:
    """Fit the blocks on training rows. ``inputs`` maps task -> its input columns; ``text``
    maps a column name to its text settings (a column of strings without one gets the
    defaults)."""
    text = dict(text or {})
    space = FeatureSpace()
    columns: dict[str, list[str]] = {}
    for task, cols in inputs.items():
        for col in cols:
            columns.setdefault(col, []).append(task)
    offset = 0
    for col, tasks in columns.items():
        is_text = col in text or any(_is_text(train_frames[t][col]) for t in tasks)
        if not is_text:
            values = np.concatenate([_numeric(train_frames[t][col], col) for t in tasks])
            std = float(values.std()) or 1.0
            space.blocks.append(
                _Block(col, offset, 1, tuple(tasks), mean=float(values.mean()), std=std)
            )
            offset += 1
            continue
        config = text.get(col, TextFeatures())
        groups = [(t,) for t in tasks] if config.vocabulary == "per_task" else [tuple(tasks)]
        for group in groups:
            words = _fit_vocabulary(config, {t: train_frames[t][col] for t in group}, col)
            idf = None
            if config.kind == "tfidf":
                vec = _vectorizer(config, vocabulary=words)
                corpus = pd.concat([_text(train_frames[t][col]) for t in group])
                idf = TfidfTransformer().fit(vec.transform(corpus))
            space.blocks.append(_Block(col, offset, len(words), group, words, idf, config=config))
            offset += len(words)
    return space


def densify(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """One batch of rows as a dense float32 array: the whole batch at once."""
    return matrix[rows].toarray()


def _fit_vocabulary(
    config: TextFeatures, texts: Mapping[str, pd.Series], column: str
) -> tuple[str, ...]:
    doc_freq: dict[str, int] = {}
    seen: list[set[str]] = []
    for task, series in texts.items():
        vec = _vectorizer(config, min_df=config.min_df)
        try:
            counts = vec.fit_transform(_text(series))
        except ValueError as exc:  # empty vocabulary
            raise DataError(
                f"column {column!r} of task {task!r} has no usable words: {exc}"
            ) from exc
        words = vec.get_feature_names_out()
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        seen.append(set(words))
        for w, d in zip(words, df, strict=True):
            doc_freq[w] = doc_freq.get(w, 0) + int(d)
    keep = set.intersection(*seen) if config.vocabulary == "intersection" else set(doc_freq)
    if not keep:
        raise DataError(
            f"column {column!r}: the tasks share no words ({config.vocabulary} vocabulary)"
        )
    ranked = sorted(keep, key=lambda w: (-doc_freq[w], w))
    if config.max_features:
        ranked = ranked[: config.max_features]
    return tuple(sorted(ranked))


def _vectorizer(config: TextFeatures, vocabulary=None, min_df: int = 1) -> CountVectorizer:
    return CountVectorizer(
        lowercase=config.lowercase,
        ngram_range=(1, config.ngram_max),
        min_df=min_df if vocabulary is None else 1,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
        dtype=np.float32,
    )


def _is_text(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str)


def _numeric(series: pd.Series, column: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise DataError(f"column {column!r} has empty or non-numeric values")
    return values
