"""Metrics, and exports and imports of an app's data."""

import csv
import io
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from uuid import UUID

import click
import orjson
from click._termui_impl import ProgressBar

from subledger.analytics import service as analytics_service
from subledger.analytics import transfer
from subledger.cli.common import APP_OPTION, checked, echo_json, load_runtime
from subledger.core import strict_json
from subledger.metrics.rules import Period


@click.command()
@APP_OPTION
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day", show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (default: 30 periods back).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (default: today).")
@click.option(
    "--environment", type=click.Choice(["Production", "Sandbox", "all"]), default="Production", show_default=True
)
@click.option("--store", default=None, help="app_store, play_store, stripe or a custom store.")
@click.option("--country", default=None, help="The store country (ISO 3166 alpha-2).")
@click.option("--product", default=None, help="A store_product_id.")
@click.option("--cohorts", is_flag=True, help="Monthly retention by month of first payment instead.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
def metrics(
    app_id: UUID,
    period: Period,
    start: datetime | None,
    end: datetime | None,
    environment: str,
    store: str | None,
    country: str | None,
    product: str | None,
    cohorts: bool,
    as_csv: bool,
) -> None:
    """Revenue, MRR/ARR, subscriptions, trials, churn, refunds, ARPU/ARPPU by day, week or month (UTC)."""
    query = analytics_service.MetricsQuery(
        period=period,
        start=start.date() if start else None,
        end=end.date() if end else None,
        environment=None if environment == "all" else environment,
        store=store,
        country=country.upper() if country else None,
        product=product,
    )
    result = checked(analytics_service.metrics, load_runtime(), app_id, query)
    if cohorts:
        months = max((len(row["retention"]) for row in result["cohorts"]), default=0)
        header = ["cohort", "subscriptions", *(f"month_{k}" for k in range(months))]
        # Newer cohorts have fewer months behind them: their later months are empty cells.
        rows = [
            [row["cohort"], row["subscriptions"], *row["retention"], *[None] * (months - len(row["retention"]))]
            for row in result["cohorts"]
        ]
    else:
        header = ["date", *analytics_service.METRICS]
        rows = [[row[name] for name in header] for row in result["data"]]
    _echo_table(header, rows, as_csv)


def _echo_table(header: list[str], rows: list[list[Any]], as_csv: bool) -> None:
    """Rows as CSV, or as a table with aligned columns (empty cells where a value is undefined)."""
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(cells)
        click.echo(out.getvalue(), nl=False)
        return
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(header)]
    click.echo("  ".join(name.rjust(width) for name, width in zip(header, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)))


EXPORT_COLUMNS = {
    "profiles": transfer.PROFILE_COLUMNS,
    "transactions": transfer.TRANSACTION_COLUMNS,
    "events": transfer.EVENT_COLUMNS,
}


@click.command("export")
@APP_OPTION
@click.argument("what", type=click.Choice(list(EXPORT_COLUMNS)))
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", default="-", help="A file (default: standard output).")
def export(app_id: UUID, what: str, file_format: str, output: str) -> None:
    """Write every profile, transaction or event of an app as JSON Lines or CSV.

    Transactions come out as import lines: `subledger import` takes them back.
    """
    runtime = load_runtime()
    total = analytics_service.export_size(runtime, app_id, what)
    flat = file_format == "csv"
    with (
        click.open_file(output, "w", encoding="utf-8", lazy=False) as out,
        click.progressbar(length=total, label=f"exporting {total} {what}", file=sys.stderr) as progress,
    ):
        writer = csv.DictWriter(out, EXPORT_COLUMNS[what], lineterminator="\n") if flat else None
        if writer:
            writer.writeheader()
        for row in analytics_service.export_rows(runtime, app_id, what, flat):
            if writer:
                writer.writerow(row)
            else:
                out.write(orjson.dumps(row).decode() + "\n")
            progress.update(1)


def _csv_lines(raw: IO[bytes], progress: ProgressBar[int]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, columns) of each CSV record, advancing the progress bar by bytes read."""

    def text() -> Iterator[str]:
        for line in raw:
            progress.update(len(line))
            yield line.decode("utf-8", "replace")

    reader = csv.DictReader(text())
    for columns in reader:
        number = reader.line_num
        if None in columns:
            yield number, "more cells than columns"
            continue
        try:
            yield number, transfer.unflatten(columns)
        except transfer.BadRow as bad:
            yield number, str(bad)


def _jsonl_lines(raw: IO[bytes], progress: ProgressBar[int]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(raw, start=1):
        progress.update(len(line))
        if not line.strip():
            continue
        try:
            body = strict_json.loads(line)
        except orjson.JSONDecodeError as error:
            yield number, f"not JSON: {error}"
            continue
        yield number, body if isinstance(body, dict) else "not a JSON object"


@click.command("import")
@APP_OPTION
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format", "file_format", type=click.Choice(["jsonl", "csv"]), default=None, help="Default: by extension."
)
def import_(app_id: UUID, path: str, file_format: str | None) -> None:
    """Record historical transactions from CSV or JSON Lines (as `subledger export transactions` writes them).

    Each line is recorded as set-transaction would record it, so importing a file
    again changes nothing (`changed` counts the lines that did); a profile is created for an
    unknown customer_user_id.
    A bad line is reported with its number and none of it is recorded; the exit
    status is then 1.
    """
    runtime = load_runtime()
    file_format = file_format or ("csv" if path.lower().endswith(".csv") else "jsonl")
    read = _csv_lines if file_format == "csv" else _jsonl_lines
    with (
        open(path, "rb") as raw,
        click.progressbar(length=os.path.getsize(path), label="importing", file=sys.stderr) as progress,
    ):
        report = analytics_service.import_transactions(runtime, app_id, read(raw, progress))
    for number, why in report.bad:
        click.echo(f"line {number}: {why}", err=True)
    echo_json({"read": report.read, "imported": report.imported, "changed": report.changed, "bad": len(report.bad)})
    if report.bad:
        sys.exit(1)
