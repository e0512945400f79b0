"""The two statements of a saved answer, compiled once per connection instead of per request.

Every participant request loads its session with the study and task version, and every
answer inserts one row. Compiling these queries through the ORM cost more CPU than
everything else an answer does, so they are written here once per connection from the
models' own fields (so they follow every migration); values go through the same
preparation and converters the ORM applies.

- ``session_by_token``: the join that ``select_related("study__task_version")`` makes,
  without the version's spec (plans are cached by spec hash; reading the spec, if
  anything needs it, loads it as any deferred field).
- ``insert_response``: ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so that a retry or
  a stale tab is told apart from a new answer by the unique constraints, without an
  error, a savepoint or a lock.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from benchmark.models import TaskVersion
from participants.models import Response, Session, Study

# (model, table alias, fields left out)
TABLES = ((Session, "s", ()), (Study, "st", ()), (TaskVersion, "v", ("spec",)))


@dataclass(frozen=True)
class _Query:
    sql: str
    # Per model: its attnames in column order and each column's (expression, converters).
    models: tuple[tuple[type, tuple[str, ...], tuple[tuple, ...]], ...]


_QUERIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INSERTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def _insert(conn) -> tuple[str, tuple]:
    quote = conn.ops.quote_name
    meta = Response._meta
    fields = tuple(f for f in meta.local_concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Only quoted names from the model go into the text; the values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields


def insert_response(response: Response) -> bool:
    """Insert an unsaved response; False (nothing stored) when its item or key is taken.

    Raises:
        IntegrityError: the session no longer exists (withdrawn meanwhile).
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    statement = _INSERTS.get(wrapper)
    if statement is None:
        statement = _INSERTS.setdefault(wrapper, _insert(wrapper))
    sql, fields = statement
    # pre_save fills auto_now_add; get_db_prep_save adapts (JSON, time zones) as save() does.
    values = [
        f.get_db_prep_save(f.pre_save(response, add=True), connection=wrapper) for f in fields
    ]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    response.pk = row[0]
    response._state.adding = False
    response._state.db = wrapper.alias
    return True
