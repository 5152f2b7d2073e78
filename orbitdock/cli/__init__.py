"""orbitdockctl: one module per command group (circus's controller layout).

Every command takes ``--json``, before or after its name; with it, errors too are
JSON on stderr: ``{"error": {"code": ..., "message": ...}}``. Exit codes: 0 ok,
1 a request failed (the error code is printed), 2 usage, 3 the daemon is not
running (LSB "not running"), 4 a request timed out.
"""

from __future__ import annotations

import sys

import click

from orbitdock import __version__
from orbitdock.cli.common import Context, OrderedGroup, pass_ctx, show_error  # noqa: F401
from orbitdock.config import ConfigError, load
from orbitdock.paths import demo_instead

JSON_FLAG = "--json"


@click.group(cls=OrderedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="orbitdockctl")
@click.option("--home", "data_dir", envvar="ORBITDOCK_HOME",
              help="Data dir of the daemon to talk to (default ~/.orbitdock).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Config file (default <data dir>/orbitdock.toml).")
@click.option("--timeout", type=float, help="Seconds to wait for a reply.")
@click.option(JSON_FLAG, "as_json", is_flag=True,
              help="Machine-readable output (also after a command).")
@click.pass_context
def cli(click_ctx: click.Context, data_dir, config_file, timeout, as_json) -> None:
    """Talk to a running orbitdockd.

    \b
    Ids: any unique prefix of a session id (the "od-" may be left out) or of an
    approval id, or <session prefix>:a<n> for an approval.
    Exit codes: 0 ok, 1 the request failed, 2 usage, 3 the daemon is not running,
    4 timeout. With --json, errors are {"error": {"code", "message"}} on stderr.
    """
    try:
        cfg = load(config_file, overrides={"paths.data_dir": data_dir,
                                           "client.request_timeout_s": timeout})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    demo = demo_instead(cfg) if data_dir is None else None
    if demo is not None:  # the one daemon running is `orbitdockd --demo`: talk to it
        click.echo(f"(the demo daemon at {demo.paths.data_dir})", err=True)
        cfg = demo
    click_ctx.obj = Context(cfg, as_json)


def _json_after_command(click_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and isinstance(click_ctx.obj, Context):
        click_ctx.obj.as_json = True


def _accept_json_everywhere(command: click.Command) -> None:
    """`orbitdockctl session list --json` means `orbitdockctl --json session list`."""
    command.params.append(click.Option(
        [JSON_FLAG], is_flag=True, expose_value=False, is_eager=True,
        callback=_json_after_command, help="Machine-readable output."))
    for sub in getattr(command, "commands", {}).values():
        _accept_json_everywhere(sub)


def _register() -> None:
    from orbitdock.cli import (approval, approve, codex, hooks, mcp, models, rollouts, session,
                               status, watch, ws)

    for module in (status, session, watch, approval, approve, models, codex, rollouts, mcp,
                   hooks, ws):
        module.register(cli)
    from orbitdock.cli import logs, service  # the first-five-minutes commands

    for module in (logs, service):
        module.register(cli)
    from orbitdock.cli import db; db.register(cli)  # noqa: E702  backups and checks
    for command in cli.commands.values():
        _accept_json_everywhere(command)


_register()


def _wants_json(args: list[str]) -> bool:
    """--json anywhere among the options (not after ``--``): errors are JSON then too,
    including those found before the command's own --json was parsed."""
    options = args[:args.index("--")] if "--" in args else args
    return JSON_FLAG in options


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="orbitdockctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        show_error(exc, _wants_json(args))
        return exc.exit_code
    except click.Abort:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
