"""The ``subledger`` command. Each feature's commands are in a module of their own, imported
when one of them runs: between them the features import the stores' libraries, FastAPI and
more, which took a second or more of every command when all were imported at start."""

import importlib

import click

# Each command: the module (under subledger.cli) that defines it, and its name there.
COMMANDS = {
    "ab-tests": ("paywalls", "ab_tests"),
    "access-levels": ("catalog", "access_levels"),
    "apps": ("apps", "apps"),
    "audiences": ("paywalls", "audiences"),
    "backup": ("database", "backup"),
    "compact": ("database", "compact"),
    "currencies": ("currencies", "currencies"),
    "deliveries": ("events", "deliveries"),
    "events": ("events", "events"),
    "export": ("analytics", "export"),
    "import": ("analytics", "import_"),
    "keys": ("apps", "keys"),
    "metrics": ("analytics", "metrics"),
    "migrate": ("database", "migrate"),
    "operators": ("operators", "operators"),
    "paywalls": ("paywalls", "paywalls"),
    "placements": ("paywalls", "placements"),
    "products": ("catalog", "products"),
    "prune": ("database", "prune"),
    "rates": ("database", "rates"),
    "refund-saver": ("stores", "refund_saver"),
    "serve": ("serve", "serve"),
    "stores": ("stores", "stores"),
    "verify": ("database", "verify"),
    "webhooks": ("events", "webhooks"),
    "worker": ("worker", "worker"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are asked for (Click's lazy loading)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"subledger.cli.{module}"), name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="subledger")
def main() -> None:
    """subledger: self-hosted backend for in-app subscriptions.

    The database comes from SUBLEDGER_DATABASE_URL (default: SQLite under
    SUBLEDGER_DATA_DIR, itself the user's data directory by default,
    ~/.local/share/subledger on Linux).
    """
