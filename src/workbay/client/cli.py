"""The `workbay` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path

import click

from workbay import __version__
from workbay.common.config import ConfigError, load_config

from .commands import run_async
from .output import err_console
from .sdk import APIError


@click.group()
@click.version_option(__version__, prog_name="workbay")
def main() -> None:
    """Workbay: a self-hosted compute cloud for AI teams."""


def _fail_config(e: ConfigError) -> None:
    err_console.print(f"[red]{e}[/red]")
    sys.exit(2)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("./var"), show_default=True,
              help="Where the database, secrets and files live.")
@click.option("--port-base", type=click.IntRange(1, 65530), default=8090, show_default=True,
              help="Webserver at N, manager N+1, storage-proxy N+2/N+3, app-proxy N+4, agent N+5.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Optional TOML file with extra settings.")
@click.option("--demo", is_flag=True, help="Also create the demo users user@ and user2@workbay.local.")
@click.option("--agents", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Agents to start, splitting this machine's cores and memory (ports N+5, N+6, …).")
def up(data_dir: Path, port_base: int, config_path: Path | None, demo: bool, agents: int) -> None:
    """Start every component in one process (the embedded default)."""
    from workbay.common.logging import setup_logging
    from workbay.lite import COMPONENTS, lite_config, serve

    try:
        config = lite_config(data_dir, port_base, config_path)
    except ConfigError as e:
        _fail_config(e)
    setup_logging(config.logging.level)

    def ready() -> None:
        click.echo(f"Workbay is up: open http://127.0.0.1:{config.webserver.port} "
                   f"(manager API at http://127.0.0.1:{config.manager.port}). Ctrl+C stops it.")

    asyncio.run(serve(config, COMPONENTS, demo=demo, ready=ready, agents=agents))


def _component_command(name: str, components: tuple[str, ...]) -> None:
    @main.command(name=name, help=f"Run the {name} alone (a cluster runs one per process).")
    @click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                  required=True, help="TOML configuration file.")
    def command(config_path: Path) -> None:
        from workbay.common.logging import setup_logging
        from workbay.common.secrets import ensure_secrets, missing_secrets
        from workbay.lite import serve

        try:
            loaded = load_config(config_path)
            config = ensure_secrets(loaded)
        except ConfigError as e:
            _fail_config(e)
        setup_logging(config.logging.level)
        if missing_secrets(loaded):
            # Fine on one machine; on several, each node would make different secrets.
            click.echo(f"Note: [secrets] {', '.join(missing_secrets(loaded))} not set in {config_path}; "
                       f"using {config.data_dir / 'secrets.toml'}. Every node of a cluster needs the same "
                       "values in its configuration.", err=True)
        click.echo(f"Starting {name}…")
        asyncio.run(serve(config, components))


for _name in ("manager", "webserver", "storage-proxy", "app-proxy", "agent"):
    _component_command(_name, (_name,))


@main.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML configuration file (default: SQLite under ./var).")
@click.option("--revision", default="head", show_default=True)
def upgrade(config_path: Path | None, revision: str) -> None:
    """Apply the Alembic migrations."""
    from workbay.common.datadir import secure_data_dir
    from workbay.common.secrets import ensure_secrets, secret_box
    from workbay.manager.models.db import upgrade_sync

    try:
        config = load_config(config_path)
    except ConfigError as e:
        _fail_config(e)
    secure_data_dir(config.data_dir)
    if not config.secrets.database:
        click.echo(f"Note: [secrets] database is not set; using {config.data_dir / 'secrets.toml'}. Every "
                   "manager of a cluster needs the same value in its configuration.", err=True)
    config = ensure_secrets(config, ("database",))  # the migrations encrypt secrets with it
    upgrade_sync(config.db_url, revision, secret_box(config))
    click.echo(f"Database is at revision {revision}.")


@main.command()
@click.option("--endpoint", default=None, help="Webserver URL (default http://127.0.0.1:8090 or WORKBAY_ENDPOINT).")
@click.option("-u", "--username", prompt="E-mail", help="Your e-mail address.")
@click.option("-p", "--password", default=None, help="Password (prompted when omitted; or WORKBAY_PASSWORD).")
@click.option("--otp", default=None, help="One-time code when 2FA is on (prompted when needed).")
@run_async
async def login(endpoint: str | None, username: str, password: str | None, otp: str | None) -> None:
    """Log in through the webserver (session mode); the cookie is saved for later commands."""
    from .credentials import DEFAULT_ENDPOINT, save_session
    from .sdk import Client

    endpoint = endpoint or os.environ.get("WORKBAY_ENDPOINT") or DEFAULT_ENDPOINT
    password = password or os.environ.get("WORKBAY_PASSWORD") or getpass.getpass("Password: ")
    async with Client(endpoint, mode="session") as client:
        result = await client.login(username, password, otp)
        if not result.get("authenticated") and (result.get("data") or {}).get("details") == "OTP not provided":
            otp = click.prompt("One-time code")
            result = await client.login(username, password, otp)
        if not result.get("authenticated"):
            data = result.get("data") or {}
            raise click.ClickException(f"Login failed: {data.get('details') or data.get('title') or 'unknown reason'}")
        save_session(endpoint, username, dict(client.cookies.items()))
    click.echo(f"Logged in as {username}.")


@main.command()
@run_async
async def logout() -> None:
    """Log out and forget the saved session."""
    from .credentials import clear_session, load_session
    from .sdk import Client

    saved = load_session()
    if saved:
        async with Client(saved["endpoint"], mode="session", cookies=saved["cookies"]) as client:
            try:
                await client.logout()
            except APIError:
                pass  # the server already forgot it
    clear_session()
    click.echo("Logged out.")


from .cli_admin import admin  # noqa: E402  (registers after main exists)

main.add_command(admin)

from .cli_admin_compute import COMMANDS as _COMPUTE_ADMIN_COMMANDS  # noqa: E402
from .cli_app import COMMANDS as _APP_COMMANDS  # noqa: E402
from .cli_image import image  # noqa: E402
from .cli_service import service  # noqa: E402
from .cli_session import session  # noqa: E402
from .cli_vfolder import vfolder  # noqa: E402

for _command in _COMPUTE_ADMIN_COMMANDS:
    admin.add_command(_command)
main.add_command(image)
main.add_command(service)
main.add_command(session)
main.add_command(vfolder)
for _command in _APP_COMMANDS:  # workbay app | ssh | scp | sftp
    main.add_command(_command)
