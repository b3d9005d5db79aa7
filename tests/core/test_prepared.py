"""Statements run straight on the driver put the same values in the database, and get
the same values out, as through SQLAlchemy's ``Connection.execute``."""

import uuid

import psycopg
import pytest
from sqlalchemy import bindparam, create_engine, event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from support.rows import NOW, full_profile

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.prepared import Prepared
from subledger.core.tables import apps, installations, profiles


@pytest.fixture
def app_id(runtime) -> uuid.UUID:
    app_id = uuid.uuid4()
    with runtime.db.write() as conn:
        conn.execute(apps.insert().values(id=app_id, name="prepared", created_at=NOW))
    return app_id


def _stored(conn, customer_user_id: str) -> tuple:
    """The row as the driver holds it, without SQLAlchemy's type processing, id aside."""
    columns = ", ".join(column.name for column in profiles.c if column.name != "id")
    driver = conn.connection.driver_connection
    placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
    query = f"SELECT {columns} FROM profiles WHERE customer_user_id = {placeholder}"
    return tuple(driver.execute(query, (customer_user_id,)).fetchone())


def test_values_are_stored_as_connection_execute_stores_them(runtime, app_id):
    insert = profiles.insert()
    with runtime.db.write() as conn:
        conn.execute(insert, full_profile(app_id, "through-sqlalchemy"))
        assert Prepared(insert).rows(conn, full_profile(app_id, "prepared")) == []
    with runtime.db.read() as conn:
        by_sqlalchemy, prepared = _stored(conn, "through-sqlalchemy"), _stored(conn, "prepared")
    assert prepared[1] == "prepared"
    assert prepared[:1] + prepared[2:] == by_sqlalchemy[:1] + by_sqlalchemy[2:]


def test_rows_come_back_as_connection_execute_returns_them(runtime, app_id):
    profile = full_profile(app_id, "reader")
    with runtime.db.write() as conn:
        conn.execute(profiles.insert(), profile)
        conn.execute(
            installations.insert(),
            {
                "profile_id": profile["id"],
                "device_id": "PHONE",
                "os": "iOS 18",
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
    queries = [
        select(profiles).where(profiles.c.customer_user_id == bindparam("key")).limit(5),
        select(profiles.c.id, apps.c.config_version, installations.c.device_id.label("device.device_id"))
        .join(apps, apps.c.id == profiles.c.app_id)
        .outerjoin(installations, installations.c.profile_id == profiles.c.id)
        .where(profiles.c.customer_user_id == bindparam("key")),
    ]
    with runtime.db.read() as conn:
        for query in queries:
            expected = [dict(row._mapping) for row in conn.execute(query, {"key": "reader"})]
            assert Prepared(query).rows(conn, {"key": "reader"}) == expected
            assert Prepared(query).first(conn, {"key": "nobody"}) is None
        assert Prepared(queries[0]).first(conn, {"key": "reader"}) == profile


def test_a_statement_first_run_without_rows_gives_rows_later(runtime, app_id):
    """Its result processing is set up from the first run, which found nothing."""
    profile = full_profile(app_id, "found later")
    by_customer = Prepared(select(profiles).where(profiles.c.customer_user_id == bindparam("key")))
    with runtime.db.read() as conn:
        assert by_customer.rows(conn, {"key": "found later"}) == []
    with runtime.db.write() as conn:
        conn.execute(profiles.insert(), profile)
    with runtime.db.read() as conn:
        assert by_customer.rows(conn, {"key": "found later"}) == [profile]


def test_returning_a_subquery_gives_its_value(runtime, app_id):
    insert = Prepared(
        profiles.insert().returning(
            select(apps.c.config_version).where(apps.c.id == bindparam("version_of")).scalar_subquery()
        )
    )
    with runtime.db.write() as conn:
        conn.execute(apps.update().values(config_version=7))
        assert insert.scalar(conn, {**full_profile(app_id, "versioned"), "version_of": app_id}) == 7


def test_a_driver_error_is_sqlalchemys_and_rolls_the_write_back(runtime, app_id):
    insert = Prepared(profiles.insert())
    with pytest.raises(IntegrityError), runtime.db.write() as conn:
        insert.rows(conn, full_profile(app_id, "twice"))
        insert.rows(conn, full_profile(app_id, "twice"))  # (app_id, customer_user_id) is unique
    with runtime.db.read() as conn:
        assert conn.scalar(select(profiles.c.id).where(profiles.c.customer_user_id == "twice")) is None
    with runtime.db.write() as conn:  # the connection is usable again
        insert.rows(conn, full_profile(app_id, "twice"))


def test_a_column_default_left_out_is_refused(runtime, app_id):
    values = full_profile(app_id, "defaults")
    del values["total_revenue_usd"]  # SQLAlchemy would fill in its Python-side default
    with pytest.raises(ValueError, match="total_revenue_usd"), runtime.db.write() as conn:
        Prepared(profiles.insert()).rows(conn, values)


def test_a_parameter_left_out_is_refused(runtime, app_id):
    query = Prepared(
        select(profiles).where(profiles.c.app_id == bindparam("app_id"), profiles.c.email == bindparam("email"))
    )
    with pytest.raises(ValueError, match="email"), runtime.db.read() as conn:
        query.rows(conn, {"app_id": app_id})


def test_columns_of_the_same_name_are_refused(runtime, app_id):
    with pytest.raises(ValueError, match="same name"), runtime.db.read() as conn:
        Prepared(select(profiles.c.id, apps.c.id).join(apps, apps.c.id == profiles.c.app_id)).rows(conn, {})


def test_statement_listeners_see_the_statement(runtime, app_id):
    seen = []
    listener = lambda conn, cursor, statement, *rest: seen.append(statement)  # noqa: E731
    event.listen(runtime.db.engine, "before_cursor_execute", listener)
    try:
        with runtime.db.read() as conn:
            Prepared(select(apps.c.name).where(apps.c.id == bindparam("id"))).rows(conn, {"id": app_id})
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0].startswith("SELECT apps.name")


def test_many_rows_go_in_together_or_not_at_all(runtime):
    rows = [{"id": uuid.uuid4(), "name": f"app {n}", "created_at": NOW} for n in range(3)]
    insert = Prepared(apps.insert())
    with runtime.db.write() as conn:
        insert.execute_many(conn, rows)
    with pytest.raises(IntegrityError), runtime.db.write() as conn:
        insert.execute_many(conn, [{**rows[0], "id": uuid.uuid4(), "name": "lost"}, rows[1]])  # rows[1] is there
    with runtime.db.read() as conn:
        stored = [dict(row._mapping) for row in conn.execute(select(apps.c.id, apps.c.name, apps.c.created_at))]
    assert sorted(stored, key=lambda row: row["name"]) == rows


def test_a_lost_postgresql_connection_is_not_used_again(postgresql_url):
    db = Database(Settings(database_url=postgresql_url).sqlalchemy_url, connections=1)
    query = Prepared(select(apps.c.name).where(apps.c.id == bindparam("id")))
    try:
        with db.read() as conn:
            assert query.rows(conn, {"id": uuid.uuid4()}) == []
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = create_engine(db.url)
        with admin.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
        admin.dispose()
        # In a write the statement is the first thing the connection sends.
        with pytest.raises(OperationalError) as lost, db.write() as conn:
            query.rows(conn, {"id": uuid.uuid4()})
        # The server's own words, not the failed ROLLBACK's after them: the connection
        # was invalidated at once, as SQLAlchemy does, and nothing was sent on it again.
        assert isinstance(lost.value.orig, psycopg.errors.AdminShutdown)
        assert lost.value.connection_invalidated
        with db.read() as conn:  # a new connection, not the dead one
            assert query.rows(conn, {"id": uuid.uuid4()}) == []
    finally:
        db.dispose()
