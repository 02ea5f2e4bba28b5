"""The data settings a study names, in a module the schema can load without pandas or scipy:
how an input column becomes features, and which built-in sources give arrays instead of a
table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge, Le

Vocabulary = Literal["union", "intersection", "per_task"]
ColumnKind = Literal["bow", "tfidf", "numeric", "categorical"]
TEXT_KINDS = ("bow", "tfidf")
ARRAY_SOURCES = {"digits"}  # built-in sources of named arrays (mtl_core.data.builtin)


@dataclass(frozen=True)
class TextFeatures:
    """How an input column becomes features. ``kind`` is ``bow``/``tfidf`` for text (with
    scikit-learn's CountVectorizer / TF-IDF and the settings below), or ``numeric`` /
    ``categorical`` for table columns (the text settings do not apply to them)."""

    kind: ColumnKind = "bow"
    max_features: Annotated[int, Ge(1)] | None = 5000  # None: every word
    vocabulary: Vocabulary = "union"
    ngram_max: Annotated[int, Ge(1), Le(3)] = 1
    min_df: Annotated[int, Ge(1)] = 1
    lowercase: bool = True


ColumnFeatures = TextFeatures
