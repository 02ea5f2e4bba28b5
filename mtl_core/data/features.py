"""Input columns become one sparse feature space shared by every task of a study.

Each input column is part of a *block* of the feature space. Columns are one of four kinds
(``features.COLUMN.kind``, else detected, see ``column_kind``):

- ``numeric``: missing values are imputed with the training rows' median, then the column is
  standardised with the training rows' mean and standard deviation;
- ``categorical``: one-hot encoded over the categories seen in the training rows; a missing
  value is a category of its own (``(missing)``), a category first seen outside the training
  rows encodes as all zeros;
- ``bow`` / ``tfidf`` (text): a bag-of-words (or TF-IDF) block whose vocabulary is fitted on
  training rows only and shared across the tasks that read that column:

  - ``union``: every word seen in any task's training text (ranked by summed document
    frequency when ``max_features`` caps it);
  - ``intersection``: only the words that occur in the training text of every task;
  - ``per_task``: one vocabulary per task, each in a block of its own, so each task has its
    own first-layer weights for its words and shares everything above.

The numeric and categorical columns read by the same tasks form one *tabular* block: a
scikit-learn ``ColumnTransformer`` (imputer + scaler, imputer + one-hot encoder) fitted on the
training rows. Rows are kept as CSR matrices of the whole space; the training loop makes a
batch dense at once (``densify``), never one row at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mtl_core.data.labels import label_key
from mtl_core.data.readers import DataError
from mtl_core.data.settings import (  # noqa: F401 (re-exported: the names' old home)
    TEXT_KINDS,
    ColumnFeatures,
    ColumnKind,
    TextFeatures,
    Vocabulary,
)

if TYPE_CHECKING:  # scikit-learn loads when a space is fitted or read back, not for the schema
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

MISSING_CATEGORY = "(missing)"
# a column of strings is text when its values hold this many words on average, or when more
# than half of its values are distinct; otherwise it is categorical
TEXT_MIN_WORDS = 2.0


def column_kind(series: pd.Series, declared: str | None = None) -> str:
    """``numeric``, ``categorical`` or ``bow`` for a column as read (``declared`` wins).

    A column that pandas read as numbers is numeric. A column of strings of which at least
    90% of the non-empty values parse as numbers is numeric too (the others are then errors,
    reported by ``check_column``). Otherwise it is text when more than half of its values are
    distinct or when they average ``TEXT_MIN_WORDS`` words or more, else categorical. Only
    the distinct values are looked at, so a long column of few values costs little.
    """
    if declared is not None:
        return declared
    if _is_number_column(series):
        return "numeric"
    counts = _distinct_values(series)
    if not len(counts):
        return "numeric"  # all empty: check_column says so
    total = counts.sum()
    numbers = pd.to_numeric(pd.Series(counts.index), errors="coerce").notna().to_numpy()
    if counts.to_numpy()[numbers].sum() >= 0.9 * total:
        return "numeric"
    if len(counts) > total / 2:
        return "bow"
    words = pd.Series(counts.index).str.split().str.len().to_numpy()
    if (words * counts.to_numpy()).sum() / total >= TEXT_MIN_WORDS:
        return "bow"
    return "categorical"


def check_column(series: pd.Series, column: str, kind: str) -> None:
    """Refuse a column that cannot become features, naming the column and the first bad row
    (rows count from 1, the header not included)."""
    if _is_number_column(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(numbers).all():
            raise DataError(f"column {column!r} has no values (every row is empty)")
        bad = np.isinf(numbers)
        if kind == "numeric" and bad.any():
            _refuse_number(series, column, bad)
        return
    counts = _distinct_values(series)
    if not len(counts):
        raise DataError(f"column {column!r} has no values (every row is empty)")
    if kind != "numeric":
        return
    bad = non_numbers(series)
    if bad.any():
        _refuse_number(series, column, bad)


def non_numbers(series: pd.Series) -> np.ndarray:
    """Where a value is given but is not a finite number (what a numeric column refuses);
    strings are parsed once per distinct value."""
    if _is_number_column(series):
        return np.isinf(series.to_numpy(dtype=np.float64, na_value=np.nan))
    distinct = pd.Series(_distinct_values(series).index)
    parsed = pd.to_numeric(distinct, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = set(distinct[~np.isfinite(parsed)])
    if not wrong:
        return np.zeros(len(series), dtype=bool)
    return _stripped(series).isin(wrong).to_numpy()


def _refuse_number(series: pd.Series, column: str, bad: np.ndarray) -> None:
    position = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    value = series.iloc[position]
    value = value.strip() if isinstance(value, str) else value
    raise DataError(
        f"column {column!r}, row {position + 1}: {value!r} is not a number "
        f"({count} such value{'s' if count > 1 else ''} in a numeric column); fix the file, "
        f"list the marker under the task's `missing:`, or set features.{column}.kind: "
        "categorical"
    )


def _is_number_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _stripped(series: pd.Series) -> pd.Series:
    """Every value as a stripped string ("" where missing), mapped over distinct values."""
    distinct = series.dropna().unique()
    return series.map({v: str(v).strip() for v in distinct}).fillna("")


def _distinct_values(series: pd.Series) -> pd.Series:
    """Counts of the non-empty values, as stripped strings."""
    counts = series.value_counts(dropna=True)
    keys = pd.Series([str(v).strip() for v in counts.index])
    counts = pd.Series(counts.to_numpy(), index=keys).groupby(level=0).sum()
    return counts[counts.index != ""]


@dataclass(frozen=True)
class TableStats:
    """What a fitted tabular block keeps of scikit-learn's imputer, scaler and one-hot encoder:
    per numeric column its training median, mean and standard deviation; per categorical
    column its categories in encoder order. Plain numbers, so a saved space is JSON."""

    median: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    categories: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, transformer: ColumnTransformer, numeric: Sequence[str]) -> TableStats:
        fitted = dict((name, t) for name, t, _ in transformer.transformers_)
        median = mean = scale = ()
        if numeric:
            pipeline = fitted["numeric"]
            median = tuple(float(v) for v in pipeline[0].statistics_)
            mean = tuple(float(v) for v in pipeline[1].mean_)
            scale = tuple(float(v) for v in pipeline[1].scale_)
        encoder = fitted["categorical"]
        categories = tuple(
            tuple(str(c) for c in cats) for cats in getattr(encoder, "categories_", ())
        )
        return cls(median, mean, scale, categories)

    def transform(self, table: pd.DataFrame, numeric, categorical) -> sp.csr_matrix:
        """Impute, standardise and one-hot encode, as the fitted scikit-learn steps do (a
        category first seen here encodes as all zeros)."""
        n = len(table)
        parts = []
        if numeric:
            x = table[list(numeric)].to_numpy(dtype=np.float64, copy=True)
            missing = np.isnan(x)
            x[missing] = np.asarray(self.median)[np.nonzero(missing)[1]]
            x -= np.asarray(self.mean)
            x /= np.asarray(self.scale)
            parts.append(sp.csr_matrix(x))
        for column, cats in zip(categorical, self.categories, strict=True):
            codes = table[column].map({c: i for i, c in enumerate(cats)}).to_numpy()
            rows = np.flatnonzero(pd.notna(codes))
            ones = np.ones(len(rows), dtype=np.float32)
            cols = codes[rows].astype(np.int64)
            parts.append(sp.csr_matrix((ones, (rows, cols)), shape=(n, len(cats))))
        if not parts:
            return sp.csr_matrix((n, 0), dtype=np.float32)
        return sp.hstack(parts, format="csr", dtype=np.float32)


@dataclass
class _Block:
    columns: tuple[str, ...]
    offset: int
    width: int
    tasks: tuple[str, ...]
    words: tuple[str, ...] = ()
    idf: TfidfTransformer | None = None
    config: TextFeatures | None = None  # text blocks
    table: TableStats | None = None  # tabular blocks
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def column(self) -> str:
        return self.columns[0]

    @property
    def kind(self) -> str:
        return self.config.kind if self.config else "table"

    def state(self) -> bytes:
        """What the fitted block depends on, for the space's fingerprint."""
        parts = [repr((self.columns, self.offset, self.width, self.tasks, self.config))]
        parts.append("\x1f".join(self.words or self.names))
        if self.table is not None and self.numeric:
            parts.append(repr(list(self.table.median)))
            parts.append(repr(list(self.table.mean) + list(self.table.scale)))
        return "\x1e".join(parts).encode()


@dataclass
class FeatureSpace:
    """The fitted layout of the input space; ``transform`` maps a task's rows into it."""

    blocks: list[_Block] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # column -> its kind

    @property
    def width(self) -> int:
        return sum(b.width for b in self.blocks)

    def fingerprint(self) -> str:
        """A hash of everything that fixes the features (vocabularies, scalers, offsets)."""
        digest = hashlib.sha256()
        for b in self.blocks:
            digest.update(b.state())
        return digest.hexdigest()[:16]

    def feature_names(self) -> list[str]:
        """One name per input column of the space: ``column:word`` for text, ``column`` for a
        numeric column and ``column=category`` for a one-hot column."""
        names: list[str] = []
        for b in self.blocks:
            names += [f"{b.column}:{w}" for w in b.words] if b.config else list(b.names)
        return names

    def describe(self) -> list[str]:
        out = []
        for b in self.blocks:
            owners = ",".join(b.tasks)
            if b.config:
                out.append(f"{b.column} [{b.config.kind}] width {b.width} for {owners}")
                continue
            kinds = [f"{c} [numeric]" for c in b.numeric] + [
                f"{c} [categorical]" for c in b.categorical
            ]
            out.append(f"{', '.join(kinds)}: width {b.width} for {owners}")
        return out

    def scaling(self, column: str) -> tuple[float, float]:
        """The (mean, standard deviation) a numeric column is standardised with."""
        for b in self.blocks:
            if column in b.numeric and b.table is not None:
                i = b.numeric.index(column)
                return b.table.mean[i], b.table.scale[i]
        raise KeyError(f"no numeric column {column!r}")

    def to_state(self) -> dict:
        """The fitted space as plain JSON values (``from_state`` gives it back)."""
        blocks = []
        for b in self.blocks:
            block: dict = {
                "columns": list(b.columns),
                "offset": b.offset,
                "width": b.width,
                "tasks": list(b.tasks),
            }
            if b.config is not None:
                block["text"] = asdict(b.config)
                block["words"] = list(b.words)
                block["idf"] = None if b.idf is None else [float(v) for v in b.idf.idf_]
            else:
                block["numeric"], block["categorical"] = list(b.numeric), list(b.categorical)
                block["names"] = list(b.names)
                block["table"] = {k: _lists(v) for k, v in asdict(b.table).items()}
            blocks.append(block)
        return {"blocks": blocks, "kinds": dict(self.kinds)}

    @classmethod
    def from_state(cls, state: Mapping) -> FeatureSpace:
        """A space saved by ``to_state``; raises ``ValueError`` on anything malformed."""
        try:
            space = cls(kinds={str(k): str(v) for k, v in state["kinds"].items()})
            for block in state["blocks"]:
                space.blocks.append(_block_from_state(block))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the saved feature space is malformed ({exc!r})") from None
        offset = 0
        for b in space.blocks:
            if b.offset != offset or b.width < 0:
                raise ValueError("the saved feature space's block offsets do not add up")
            offset += b.width
        return space

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


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _block_from_state(block: Mapping) -> _Block:
    columns, tasks = tuple(map(str, block["columns"])), tuple(map(str, block["tasks"]))
    offset, width = int(block["offset"]), int(block["width"])
    if "text" in block:
        config = TextFeatures(**block["text"])
        if config.kind not in TEXT_KINDS:
            raise ValueError(f"the saved text block has kind {config.kind!r}")
        words = tuple(map(str, block["words"]))
        idf = None
        if block["idf"] is not None:
            from sklearn.feature_extraction.text import TfidfTransformer  # (sklearn: see top)

            idf = TfidfTransformer()
            idf.idf_ = np.asarray(block["idf"], dtype=np.float64)
            if len(idf.idf_) != len(words):
                raise ValueError("the saved text block has one IDF weight per word")
        if len(words) != width:
            raise ValueError("the saved text block's width is not its number of words")
        return _Block(columns, offset, width, tasks, words, idf, config=config)
    table = block["table"]
    stats = TableStats(
        tuple(float(v) for v in table["median"]),
        tuple(float(v) for v in table["mean"]),
        tuple(float(v) for v in table["scale"]),
        tuple(tuple(str(c) for c in cats) for cats in table["categories"]),
    )
    numeric, categorical = tuple(block["numeric"]), tuple(block["categorical"])
    names = tuple(map(str, block["names"]))
    counts = {len(stats.median), len(stats.mean), len(stats.scale), len(numeric)}
    if len(counts) != 1 or len(stats.categories) != len(categorical):
        raise ValueError("the saved table block's statistics do not match its columns")
    if len(names) != width or width != len(numeric) + sum(map(len, stats.categories)):
        raise ValueError("the saved table block's width is not its number of features")
    return _Block(
        columns,
        offset,
        width,
        tasks,
        table=stats,
        numeric=numeric,
        categorical=categorical,
        names=names,
    )


def _transform_block(b: _Block, frame: pd.DataFrame) -> sp.csr_matrix:
    if b.table is not None:
        table = _tabular(frame, b.numeric, b.categorical)
        return b.table.transform(table, b.numeric, b.categorical)
    counts = _vectorizer(b.config, vocabulary=b.words).transform(_text(frame[b.column]))
    if b.idf is not None:
        counts = b.idf.transform(counts)
    return sp.csr_matrix(counts, dtype=np.float32)


def fit_feature_space(
    train_frames: Mapping[str, pd.DataFrame],
    inputs: Mapping[str, Sequence[str]],
    text: Mapping[str, TextFeatures] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> FeatureSpace:
    """Fit the blocks on training rows. ``inputs`` maps task -> its input columns; ``text``
    maps a column name to its settings; ``kinds`` maps a column to the kind found for it
    (``column_kind`` decides for the others)."""
    text = dict(text or {})
    space = FeatureSpace()
    columns: dict[str, list[str]] = {}
    for task, cols in inputs.items():
        for col in cols:
            columns.setdefault(col, []).append(task)
    for col, tasks in columns.items():
        declared = text[col].kind if col in text else (kinds or {}).get(col)
        space.kinds[col] = column_kind(_stack(train_frames, tasks, col), declared)
    tables: dict[tuple[str, ...], list[str]] = {}  # tasks -> their numeric/categorical columns
    order: list[tuple[str, object]] = []
    for col, tasks in columns.items():
        if space.kinds[col] in TEXT_KINDS:
            order.append(("text", col))
        else:
            group = tuple(tasks)
            if group not in tables:
                tables[group] = []
                order.append(("table", group))
            tables[group].append(col)
    offset = 0
    for what, item in order:
        if what == "table":
            block = _fit_table(train_frames, item, tables[item], space.kinds, offset)
            space.blocks.append(block)
            offset += block.width
            continue
        col, tasks = item, columns[item]
        config = text.get(col, TextFeatures(kind=space.kinds[col]))
        groups = [(t,) for t in tasks] if config.vocabulary == "per_task" else [tuple(tasks)]
        for group in groups:
            words = _fit_vocabulary(config, {t: train_frames[t][col] for t in group}, col)
            idf = None
            if config.kind == "tfidf":
                from sklearn.feature_extraction.text import TfidfTransformer  # (see top)

                vec = _vectorizer(config, vocabulary=words)
                corpus = pd.concat([_text(train_frames[t][col]) for t in group])
                idf = TfidfTransformer().fit(vec.transform(corpus))
            space.blocks.append(
                _Block((col,), offset, len(words), group, words, idf, config=config)
            )
            offset += len(words)
    return space


def _fit_table(
    train_frames: Mapping[str, pd.DataFrame],
    tasks: tuple[str, ...],
    columns: list[str],
    kinds: Mapping[str, str],
    offset: int,
) -> _Block:
    numeric = tuple(c for c in columns if kinds[c] == "numeric")
    categorical = tuple(c for c in columns if kinds[c] == "categorical")
    frames = _distinct([train_frames[t] for t in tasks])
    table = pd.concat([_tabular(f, numeric, categorical) for f in frames], ignore_index=True)
    for col in numeric:
        if table[col].isna().all():
            raise DataError(f"column {col!r} has no values in the training rows")
    # here, not at the top: scikit-learn loads only when a table is fitted
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer  # (scikit-learn: as above)
    from sklearn.pipeline import Pipeline  # (as above)
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # (as above)

    transformer = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                list(numeric),
            ),
            (
                "categorical",
                OneHotEncoder(
                    handle_unknown="ignore",
                    dtype=np.float32,
                    feature_name_combiner=lambda column, value: f"{column}={value}",
                ),
                list(categorical),
            ),
        ],
        sparse_threshold=1.0,
        verbose_feature_names_out=False,
    )
    transformer.fit(table)
    names = tuple(str(n) for n in transformer.get_feature_names_out())
    return _Block(
        tuple(columns),
        offset,
        len(names),
        tasks,
        table=TableStats.of(transformer, numeric),
        numeric=numeric,
        categorical=categorical,
        names=names,
    )


def _tabular(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]):
    """The block's columns as the transformer takes them: numbers (NaN where missing) and
    category strings (``(missing)`` where missing)."""
    out = {c: pd.to_numeric(frame[c], errors="coerce").astype(np.float64) for c in numeric}
    for c in categorical:
        series = frame[c]
        names = {v: _category(v) for v in series.dropna().unique()}
        out[c] = series.map(names).fillna(MISSING_CATEGORY).astype(object)
    return pd.DataFrame(out, index=frame.index)


def _category(value: object) -> str:
    text = str(label_key(value)).strip()  # 3, 3.0 and "3" are one category, as for labels
    return text or MISSING_CATEGORY


def _distinct(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Tasks of one table share their frames: fit on its rows once, not once per task."""
    seen: dict[int, pd.DataFrame] = {}
    for f in frames:
        seen.setdefault(id(f), f)
    return list(seen.values())


def _stack(frames: Mapping[str, pd.DataFrame], tasks: Sequence[str], column: str) -> pd.Series:
    parts = _distinct([frames[t] for t in tasks])
    return parts[0][column] if len(parts) == 1 else pd.concat([f[column] for f in parts])


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
    from sklearn.feature_extraction.text import CountVectorizer  # (sklearn: see top)

    return CountVectorizer(
        lowercase=config.lowercase,
        ngram_range=(1, config.ngram_max),
        min_df=min_df if vocabulary is None else 1,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
        dtype=np.float32,
    )


def _text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str)
