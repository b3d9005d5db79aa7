"""Dashboard operators."""

import click

from subledger.cli.common import echo_json, load_runtime
from subledger.dashboard import service as dashboard_service


@click.group()
def operators() -> None:
    """People who may sign in to the dashboard at /dashboard/."""


ROLES = click.Choice(dashboard_service.ROLES)
ROLE_HELP = "owner: everything; analyst: sees every page, changes nothing."


@operators.command("create")
@click.option("--email", required=True)
@click.option("--role", type=ROLES, default=dashboard_service.OWNER, show_default=True, help=ROLE_HELP)
@click.password_option(
    help="At least 12 characters (asked for when not given; or SUBLEDGER_OPERATOR_PASSWORD).",
    envvar="SUBLEDGER_OPERATOR_PASSWORD",
)
def operators_create(email: str, role: str, password: str) -> None:
    """Create an operator (the password is stored as an argon2id hash)."""
    try:
        echo_json(dashboard_service.create_operator(load_runtime(), email, password, role))
    except dashboard_service.OperatorExists:
        raise click.ClickException(f"an operator {email} exists already") from None
    except ValueError as refused:  # a weak password, or an email the table cannot hold
        raise click.ClickException(str(refused)) from None


@operators.command("list")
def operators_list() -> None:
    echo_json(dashboard_service.list_operators(load_runtime()))


@operators.command("role")
@click.option("--email", required=True)
@click.option("--role", type=ROLES, required=True, help=ROLE_HELP)
def operators_role(email: str, role: str) -> None:
    """Give an operator another role; their sessions have it from their next page."""
    if not dashboard_service.set_role(load_runtime(), email, role):
        raise click.ClickException(f"no operator {email}")
    echo_json({"email": email.strip().lower(), "role": role})


@operators.command("delete")
@click.option("--email", required=True)
def operators_delete(email: str) -> None:
    """Delete an operator; their sessions end with them."""
    if not dashboard_service.delete_operator(load_runtime(), email):
        raise click.ClickException(f"no operator {email}")
