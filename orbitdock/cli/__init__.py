"""orbitdockctl: one module per command group (circus's controller layout).

Every command takes ``--json``. Exit codes: 0 ok, 1 a request failed (the error
code is printed), 2 usage, 3 the daemon is not running (LSB "not running"),
4 a request timed out.
"""

from __future__ import annotations

import sys

import click

from orbitdock.cli.common import Context, pass_ctx  # noqa: F401  (re-export)
from orbitdock.config import ConfigError, load


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", "data_dir", envvar="ORBITDOCK_HOME",
              help="Data dir of the daemon to talk to (default ~/.orbitdock).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Config file (default <data dir>/orbitdock.toml).")
@click.option("--timeout", type=float, help="Seconds to wait for a reply.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def cli(click_ctx: click.Context, data_dir, config_file, timeout, as_json) -> None:
    """Talk to a running orbitdockd."""
    try:
        cfg = load(config_file, overrides={"paths.data_dir": data_dir,
                                           "client.request_timeout_s": timeout})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click_ctx.obj = Context(cfg, as_json)


def _register() -> None:
    from orbitdock.cli import approve, codex, models, rollouts, session, status, watch, ws

    for module in (status, session, watch, approve, models, codex, rollouts, ws):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="orbitdockctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
