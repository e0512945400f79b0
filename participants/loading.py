"""A participant request's session, with its study and task version, in one cheap query.

Every participant page and every answer starts by loading these three rows. Compiling
the ORM's ``select_related`` query costs more CPU than the rest of an answer, so the
same join is written here once per connection from the models' own fields (it follows
every migration) and its values go through the converters the ORM would apply. The
version's spec is left out: plans are cached by spec hash, and reading the spec, if
anything needs it, loads it as any deferred field.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from benchmark.models import TaskVersion
from participants.models import Session, Study

# (model, table alias, fields left out)
TABLES = ((Session, "s", ()), (Study, "st", ()), (TaskVersion, "v", ("spec",)))


@dataclass(frozen=True)
class _Query:
    sql: str
    # Per model: its attnames in column order and each column's (expression, converters).
    models: tuple[tuple[type, tuple[str, ...], tuple[tuple, ...]], ...]


_QUERIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _query(conn) -> _Query:
    quote = conn.ops.quote_name
    columns, models = [], []
    for model, alias, skip in TABLES:
        fields = [f for f in model._meta.concrete_fields if f.attname not in skip]
        columns += [f"{alias}.{quote(f.column)}" for f in fields]
        converters = []
        for field in fields:
            col = field.get_col(alias)
            funcs = tuple(conn.ops.get_db_converters(col)) + tuple(col.get_db_converters(conn))
            converters.append((col, funcs))
        models.append((model, tuple(f.attname for f in fields), tuple(converters)))
    session, study, version = (model._meta for model, _, _ in TABLES)
    # Only quoted names from the models go into the text; the token is a parameter.
    joins = (
        f"{quote(session.db_table)} s JOIN {quote(study.db_table)} st "
        f"ON st.{quote(study.pk.column)} = s.{quote(session.get_field('study').column)} "
        f"JOIN {quote(version.db_table)} v "
        f"ON v.{quote(version.pk.column)} = st.{quote(study.get_field('task_version').column)}"
    )
    token = f"s.{quote(session.get_field('token').column)}"
    sql = f"SELECT {', '.join(columns)} FROM {joins} WHERE {token} = %s"  # noqa: S608
    return _Query(sql=sql, models=tuple(models))


def session_by_token(token: str) -> Session | None:
    """The session with this token, its ``study`` and ``study.task_version`` loaded; or None."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's connection
    query = _QUERIES.get(wrapper)
    if query is None:
        query = _QUERIES.setdefault(wrapper, _query(wrapper))
    with wrapper.cursor() as cursor:
        cursor.execute(query.sql, [token])
        row = cursor.fetchone()
    if row is None:
        return None
    objects, start = [], 0
    for model, names, converters in query.models:
        values = list(row[start : start + len(names)])
        start += len(names)
        for n, (col, funcs) in enumerate(converters):
            for func in funcs:
                values[n] = func(values[n], col, wrapper)
        objects.append(model.from_db(wrapper.alias, names, values))
    session, study, version = objects
    study.task_version = version
    session.study = study
    return session
