"""Full-text search over videos: SQLite FTS5 on the embedded default, a PostgreSQL `tsvector`
table with GIN indexes when scaled out. Both index the same words, cut and folded here.

Words are cut from text in Python and folded (case, diacritics, ligatures) the same way for
the index and for queries, so both engines agree on what matches: every word of a query must
match, the last one as a prefix. A query reaches an engine only as quoted words built from
letters and digits, so nothing a user types is ever read as query syntax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from sqlalchemy import String, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

# The migrations create these by hand (`run_env(unmanaged=...)` keeps autogenerate off them).
SEARCH_TABLE = "video_search"
# Longer runs of letters are cut: nobody types them, and PostgreSQL caps a lexeme's size.
MAX_WORD_LENGTH = 64
MAX_QUERY_WORDS = 16

# Letters that carry no combining mark to strip, so NFKD alone would leave them apart.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "Ħ": "h",
    }
)
# Runs of letters and digits; `_` is a separator, as it is for FTS5's unicode61 tokenizer.
_WORD = re.compile(r"[^\W_]+")


def fold(value: str) -> str:
    """Lower-case, without diacritics: `Crème Brûlée` and `creme brulee` fold alike."""
    decomposed = unicodedata.normalize("NFKD", value.translate(_LETTERS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def words(value: str) -> list[str]:
    """The folded words of `value`, in order, each at most MAX_WORD_LENGTH long."""
    return [word[:MAX_WORD_LENGTH] for word in _WORD.findall(fold(value))]


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _fts5_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _tsquery_lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


class SearchIndex:
    """The search table of one database, written in the transactions that change videos."""

    def __init__(self, dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no full-text search for {dialect!r}")
        self.dialect = dialect

    async def put(
        self,
        session: AsyncSession,
        video_id: str,
        *,
        title: str,
        description: str,
        tags: Sequence[str],
    ) -> None:
        title_words = words(title)
        all_words = title_words + words(description) + [w for tag in tags for w in words(tag)]
        if self.dialect == "sqlite":
            # One row per video; triggers keep the FTS5 index over it in step.
            await session.execute(
                text(
                    "INSERT INTO video_search (video_id, title, body) VALUES (:id, :title, :body)"
                    " ON CONFLICT (video_id) DO UPDATE SET title = excluded.title,"
                    " body = excluded.body"
                ),
                {
                    "id": video_id,
                    "title": " ".join(title_words),
                    "body": " ".join(all_words[len(title_words) :]),
                },
            )
            return
        await session.execute(
            text(
                "INSERT INTO video_search (video_id, title_words, words) VALUES (:id,"
                " array_to_tsvector(CAST(:title AS text[])),"
                " array_to_tsvector(CAST(:all AS text[])))"
                " ON CONFLICT (video_id) DO UPDATE SET title_words = excluded.title_words,"
                " words = excluded.words"
            ),
            {"id": video_id, "title": _unique(title_words), "all": _unique(all_words)},
        )

    async def remove(self, session: AsyncSession, video_id: str) -> None:
        await session.execute(
            text("DELETE FROM video_search WHERE video_id = :id"), {"id": video_id}
        )

    def matching(self, query_words: Sequence[str], *, titles_only: bool = False) -> TextualSelect:
        """The ids of videos matching every word, the last as a prefix (a subquery)."""
        if not query_words:
            raise ValueError("a search needs at least one word")
        query_words = list(query_words)[:MAX_QUERY_WORDS]
        statement: TextClause
        if self.dialect == "sqlite":
            terms = [_fts5_phrase(w) for w in query_words]
            terms[-1] += "*"
            column = "{title}" if titles_only else "{title body}"
            expression = f"{column} : ({' AND '.join(terms)})"
            statement = text(
                "SELECT video_id FROM video_search WHERE id IN"
                " (SELECT rowid FROM video_search_fts WHERE video_search_fts MATCH :search)"
            ).bindparams(search=expression)
        else:
            lexemes = [_tsquery_lexeme(w) for w in query_words]
            lexemes[-1] += ":*"
            column = "title_words" if titles_only else "words"
            statement = text(
                f"SELECT video_id FROM video_search WHERE {column} @@ CAST(:search AS tsquery)"  # noqa: S608 - column is one of two literals
            ).bindparams(search=" & ".join(lexemes))
        return statement.columns(video_id=String)
