"""Where a database's bytes go: each table's rows and its indexes, per profile.

    python bench/seed.py --database-url sqlite:////tmp/big.db --profiles 100000   # once
    python bench/footprint.py --database-url sqlite:////tmp/big.db

SQLite's sizes come from its ``dbstat`` table (the pages each table and index takes);
PostgreSQL's from ``pg_table_size`` (TOAST included) and ``pg_relation_size`` of each index.
Prints a table, largest first, with bytes per profile in the database.
"""

import argparse

import sqlalchemy

from subledger.config import Settings

SQLITE = """
SELECT coalesce(m.tbl_name, s.name), m.type = 'index', sum(s.pgsize)
FROM dbstat AS s LEFT JOIN sqlite_master AS m ON m.name = s.name
GROUP BY s.name
"""
POSTGRESQL = """
SELECT c.relname, false, pg_table_size(c.oid) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'
UNION ALL
SELECT t.relname, true, pg_relation_size(i.indexrelid) FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'
"""


def footprint(url: str) -> tuple[int, dict[str, tuple[int, int, int]]]:
    """(profiles, {table: (bytes of rows, bytes of indexes, how many indexes)})."""
    engine = sqlalchemy.create_engine(Settings(database_url=url).sqlalchemy_url)
    sizes: dict[str, tuple[int, int, int]] = {}
    with engine.connect() as conn:
        profiles = conn.exec_driver_sql("SELECT count(*) FROM profiles").scalar_one()
        query = SQLITE if engine.dialect.name == "sqlite" else POSTGRESQL
        for table, is_index, size in conn.exec_driver_sql(query):
            rows, indexes, count = sizes.get(table, (0, 0, 0))
            sizes[table] = (rows, indexes + size, count + 1) if is_index else (rows + size, indexes, count)
    engine.dispose()
    return profiles, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--top", type=int, default=8, help="tables listed (the rest are summed)")
    options = parser.parse_args()
    profiles, sizes = footprint(options.database_url)
    if not profiles:
        parser.exit(1, "no profiles to share the bytes among: seed the database first (bench/seed.py)\n")
    total = sum(rows + indexes for rows, indexes, _ in sizes.values())
    print(f"{profiles:,} profiles, {total / 2**20:,.1f} MiB: {total / profiles:,.0f} bytes per profile\n")
    print("| table | rows, bytes per profile | indexes (how many), bytes per profile | share |")
    print("|---|---|---|---|")
    ranked = sorted(sizes.items(), key=lambda item: -(item[1][0] + item[1][1]))
    for table, (rows, indexes, count) in ranked[: options.top]:
        share = (rows + indexes) / total
        print(f"| {table} | {rows / profiles:,.0f} | {indexes / profiles:,.0f} ({count}) | {share:.0%} |")
    rest = sum(rows + indexes for _, (rows, indexes, _) in ranked[options.top :])
    print(f"| the other {len(ranked) - options.top} | {rest / profiles:,.0f} | | {rest / total:.0%} |")


if __name__ == "__main__":
    main()
