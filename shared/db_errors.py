"""Which database errors are permanent: the same statement on the same data fails the same way.

    psycopg.Error (bare, or wrapped in SQLAlchemy's DBAPIError as `.orig`)
    ├── DataError        SQLSTATE class 22: a number out of range (bigint), NUL in text, a date
    │                    Postgres cannot take; also raised by psycopg itself before sending (NUL)
    ├── IntegrityError   class 23: a unique, foreign key, check or not-null constraint refused it
    └── anything else    connection loss, serialization failure, deadlock, lock or statement
                         timeout, admin shutdown: retrying may help, so they stay retried

A permanent one becomes `PermanentDatabaseError`, so the actor factory dead-letters the message at
once with the reason instead of retrying it for an hour as if the database were down. The
idempotency claim is not affected: it is an `INSERT ... ON CONFLICT DO NOTHING` that never raises
an IntegrityError, and it runs before `permanent_database_errors` is entered.

The reason keeps the error's first line and SQLSTATE only: Postgres' DETAIL line quotes the row's
values, which may be personal data, and the dead-letter reason is shown in the console.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.exc import DBAPIError

from shared.errors import PermanentError

#: SQLSTATE classes whose errors depend only on the statement and its data.
PERMANENT_SQLSTATE_CLASSES = frozenset({"22", "23"})
_REASON_LIMIT = 300


class PermanentDatabaseError(PermanentError):
    """The database refused the message's data; the same message would be refused again."""

    def __init__(self, message: str, *, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def classify(error: BaseException) -> PermanentDatabaseError | None:
    """The permanent error `error` amounts to, or None when retrying may help."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(cause, psycopg.Error):
        return None
    sqlstate = cause.sqlstate
    if sqlstate is not None:
        permanent = sqlstate[:2] in PERMANENT_SQLSTATE_CLASSES
    else:  # raised by psycopg before the server saw it (a NUL in a string): a fact about the data
        permanent = isinstance(cause, psycopg.DataError | psycopg.IntegrityError)
    if not permanent:
        return None
    first_line = (str(cause).splitlines() or [""])[0][:_REASON_LIMIT]
    code = f"SQLSTATE {sqlstate}" if sqlstate else "refused by the driver"
    return PermanentDatabaseError(
        f"the database refused the data ({type(cause).__name__}, {code}): {first_line}", sqlstate=sqlstate
    )


@contextmanager
def permanent_database_errors() -> Iterator[None]:
    """Re-raise deterministic database errors in the block as `PermanentDatabaseError`."""
    try:
        yield
    except (DBAPIError, psycopg.Error) as error:
        permanent = classify(error)
        if permanent is None:
            raise
        raise permanent from error
