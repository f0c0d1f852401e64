"""The `touchpoint` command line: serve, db upgrade, program create, demo, jobs run, backfill,
reattribute, import. Commands that print a result print JSON with `--json`."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from core.config import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _app():  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app()


def _echo(data: dict[str, Any], as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human)


@click.group(help="Touchpoint: self-hosted affiliate tracking and attribution.")
def main() -> None:
    pass


@main.command(help="Serve Touchpoint with gunicorn on the configured database.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    from core import migrate

    settings = _settings()
    todo = migrate.pending(settings.database_url)
    if todo:
        raise click.ClickException(
            f"{len(todo)} database migration(s) pending ({', '.join(todo)}); "
            "run `touchpoint db upgrade` first")
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("forwarded_allow_ips", "127.0.0.1")

        def load(self):  # type: ignore[no-untyped-def]
            return _app()

    _print_first_steps(settings)
    click.echo(f"Touchpoint on http://{host}:{port} ({workers} workers, {_safe_url(settings.database_url)})")
    Server().run()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _print_first_steps(settings: Settings) -> None:
    from sqlmodel import Session, func, select

    from core.db import make_engine
    from core.models import Program

    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        count = s.exec(select(func.count()).select_from(Program)).one()
    engine.dispose()
    if not count:
        click.echo("No program yet. Create the first one:\n"
                   "  .venv/bin/touchpoint program create --name 'My shop' --currency USD "
                   "--domain shop.example\n"
                   "or fill a demo:  .venv/bin/touchpoint demo")


@main.group(help="Database commands.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply database migrations (Alembic).")
def db_upgrade() -> None:
    from core import migrate

    settings = _settings()
    migrate.upgrade(settings.database_url)
    click.echo(f"database is up to date ({_safe_url(settings.database_url)})")


@main.group(help="Programs.")
def program() -> None:
    pass


@program.command("create", help="Create a program; prints its keys (the secret key only now).")
@click.option("--name", required=True)
@click.option("--currency", required=True, help="ISO 4217, e.g. USD")
@click.option("--domain", required=True, help="the shop's domain, e.g. shop.example")
@click.option("--json", "as_json", is_flag=True)
def program_create(name: str, currency: str, domain: str, as_json: bool) -> None:
    from pydantic import ValidationError

    from core.errors import ApiError, describe_validation_error
    from core.programs import create_program
    from core.schemas import ProgramCreate

    app = _app()
    with app.app_context():
        from core.db import get_db

        try:
            data = ProgramCreate(name=name, currency=currency, domain=domain)
            with get_db().write() as s:
                created = create_program(s, data)
        except ValidationError as exc:
            raise click.UsageError(describe_validation_error(exc)) from None
        except ApiError as exc:
            raise click.UsageError(exc.message) from None
    out = created.model_dump()
    _echo(out, as_json, f"program {out['program_id']}\n  secret key (shown once): "
                        f"{out['api_key']}\n  publishable key: {out['publishable_key']}")


@main.command(help="Create a demo program with partners, links, codes, clicks and conversions "
                    "from all four platforms, and print where to log in.")
@click.option("--days", default=180, show_default=True, type=click.IntRange(7, 365))
@click.option("--json", "as_json", is_flag=True)
def demo(days: int, as_json: bool) -> None:
    from core import demo as demo_ops

    app = _app()
    with app.app_context():
        out = demo_ops.run(app, days=days)
    _echo(out, as_json,
          f"Demo program {out['program_id']}: {out['partners']} partners, {out['clicks']} clicks, "
          f"{out['sales']} sales, {out['refunds']} refunds.\n"
          f"  dashboard: {out['admin_url']}  (email {out['email']}, password {out['password']})\n"
          f"  API key (shown once): {out['api_key']}")


@main.group(help="Owners who sign in to /admin.")
def user() -> None:
    pass


@user.command("create", help="Add an owner to a program; asks for the password.")
@click.option("--program", "program_id", required=True)
@click.option("--email", required=True)
@click.password_option(help="at least 10 characters")
def user_create(program_id: str, email: str, password: str) -> None:
    from core.db import get_db
    from core.models import Program
    from core.users import create_user

    if len(password) < 10:
        raise click.UsageError("the password needs at least 10 characters")
    app = _app()
    with app.app_context(), get_db().write() as s:
        if s.get(Program, program_id) is None:
            raise click.UsageError(f"no program {program_id}")
        create_user(s, program_id, email, password)
    click.echo(f"{email} can now sign in at {_settings().base_url}/admin")


@main.group(help="Background work.")
def jobs() -> None:
    pass


@jobs.command("run", help="Approve commissions past their holding period, apply stored and retry "
                          "failed deliveries, create scheduled payouts and send outgoing webhooks. "
                          "Run it from cron every few minutes.")
@click.option("--json", "as_json", is_flag=True)
def jobs_run(as_json: bool) -> None:
    from core import jobs as job_ops

    app = _app()
    with app.app_context():
        result = job_ops.run_due(datetime.now(timezone.utc))
    _echo(result, as_json, "\n".join(f"{k}: {v}" for k, v in result.items()))


@main.command(help="Pull past orders, subscriptions and refunds from a source's platform API.")
@click.argument("source_id")
@click.option("--since", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--json", "as_json", is_flag=True)
def backfill(source_id: str, since: datetime, as_json: bool) -> None:
    from core import backfill as backfill_ops

    app = _app()
    with app.app_context():
        try:
            result = backfill_ops.run(source_id, since.replace(tzinfo=timezone.utc),
                                      progress=not as_json and sys.stderr.isatty())
        except backfill_ops.BackfillError as exc:
            raise click.ClickException(str(exc)) from None
    _echo(result, as_json, "\n".join(f"{k}: {v}" for k, v in result.items()))


@main.command(help="What-if: replay stored touches under another model and window; prints each "
                    "partner's commission today and under the alternative. Changes nothing.")
@click.option("--program", "program_id", default=None, help="program id (default: the only one)")
@click.option("--model", required=True, type=click.Choice(["last_touch", "first_touch"]))
@click.option("--window", "window_days", type=click.IntRange(1, 3650), default=None,
              help="attribution window in days (default: the program's)")
@click.option("--from", "start", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--to", "end", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def reattribute(program_id: str | None, model: str, window_days: int | None,
                start: datetime | None, end: datetime | None, as_json: bool) -> None:
    from sqlmodel import select

    from core.db import get_db
    from core.models import Program
    from core.money import Money
    from core.whatif import replay

    app = _app()
    with app.app_context(), get_db().session() as s:
        programs = s.exec(select(Program).where(Program.id == program_id) if program_id
                          else select(Program)).all()
        if len(programs) != 1:
            raise click.UsageError("give --program (there is not exactly one program)"
                                   if not program_id else f"no program {program_id}")
        program = programs[0]
        utc = timezone.utc
        result = replay(s, program, model, window_days or program.attribution_window_days,
                        start.replace(tzinfo=utc) if start else None,
                        end.replace(tzinfo=utc) if end else None)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['conversions']} conversions; "
                        f"{result['conversions_changing_partner']} change partner under "
                        f"{model} ({result['attribution_window_days']} days)")
    for col in ("partner", "today", model, "difference"):
        table.add_column(col, justify="left" if col == "partner" else "right")
    for row in result["partners"]:
        fmt = lambda v: Money(v, row["currency"]).format()  # noqa: E731
        table.add_row(row["name"], fmt(row["current"]), fmt(row["alternative"]),
                      fmt(row["difference"]))
    Console().print(table)


def _app_of(ctx: click.Context):  # type: ignore[no-untyped-def]
    """The app Flask's test runner passes (`app.test_cli_runner()`), else the configured one."""
    from flask.cli import ScriptInfo

    info = ctx.find_object(ScriptInfo)
    return info.load_app() if info is not None and info.create_app is not None else _app()


@main.command("import", help="Bring partners, referral codes, customers and commission history "
                             "from another affiliate product's CSV export (see docs/importing.md). "
                             "Safe to run twice; a bad file changes nothing (exit code 2).")
@click.argument("product",  # the keys of core.importers.IMPORTERS (imported lazily, like all here)
                type=click.Choice(["rewardful", "firstpromoter", "tolt", "partnerstack"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--program", "program_id", default=None, help="program id (default: the only one)")
@click.option("--kind", type=click.Choice(["partners", "customers", "commissions"]), default=None,
              help="what the file holds (default: told from its header row)")
@click.option("--source", "source_id", default=None,
              help="a source id (or `api`) whose customer ids the file's customer ids are, so "
                   "that source's next payments find the customers")
@click.option("--dry-run", is_flag=True, help="check and count everything, write nothing")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def import_(ctx: click.Context, product: str, file: Path, program_id: str | None,
            kind: str | None, source_id: str | None, dry_run: bool, as_json: bool) -> None:
    from core.importers.common import ImportFailed
    from core.importers.runner import run

    app = _app_of(ctx)
    with app.app_context():
        try:
            result = run(product, file, program_id, kind, source_id, dry_run,
                         progress=not as_json and sys.stderr.isatty())
        except ImportFailed as exc:
            click.echo(f"Error: {file.name}: {exc} (nothing was imported)", err=True)
            ctx.exit(2)
    _echo(result, as_json, "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":  # pragma: no cover
    main()
