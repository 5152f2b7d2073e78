"""``orbitdock-load``: command line of the load, fault and bad-input tool.

Exit codes: 0 the run passed (nothing lost or duplicated, every check held),
1 a check failed (the table says which), 2 usage, 3 the run could not be set up
(no codex binary, the daemon did not start, a subscriber failed).
"""

from __future__ import annotations

import json
import logging
import signal
import sys

import click

from orbitdock import __version__
from orbitdock.load.model import KINDS, ModelParams
from orbitdock.load.report import table
from orbitdock.load.scenario import DaemonDied, RunConfig, run
from orbitdock.load.turns import DriverParams

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 3


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--daemon-env")
        out[key] = value
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orbitdock-load")
@click.option("--sessions", "-n", type=click.IntRange(0, 2000), default=5, show_default=True,
              help="Direct sessions to create and drive.")
@click.option("--duration", "-d", type=click.FloatRange(1, 86400), default=20, show_default=True,
              help="Seconds of load (then drain, checks and the report).")
@click.option("--subscribers", "-k", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Subscriber processes (the first one drives turns and approvals).")
@click.option("--passive", "-m", type=click.IntRange(0, 2000), default=0, show_default=True,
              help="Passive sessions, written as rollout files (starts the watcher).")
@click.option("--passive-interval", type=click.FloatRange(0.05, 3600), default=1.0,
              show_default=True, help="Seconds between turns appended to each passive rollout.")
@click.option("--provider", type=click.Choice(["codex", "scripted"]), default="codex",
              show_default=True, help="codex: real app-server + load model; scripted: in-process.")
@click.option("--attach", is_flag=True,
              help="Use the running daemon of ORBITDOCK_HOME (no kill-daemon; it must already "
                   "point codex at a model, or use --provider scripted).")
@click.option("--kill-daemon", type=float, default=0, metavar="EVERY",
              help="kill -9 the daemon every EVERY seconds, restart, check, go on.")
@click.option("--kill-codex", type=float, default=0, metavar="EVERY",
              help="kill -9 one app-server process every EVERY seconds.")
@click.option("--slow-subscriber", is_flag=True, help="Add a subscriber that stops reading.")
@click.option("--slow-pause", type=float, default=0,
              help="Seconds it stops (default half the run).")
@click.option("--fuzz", type=click.IntRange(0, 10_000_000), default=0, metavar="N",
              help="Send N malformed/hostile frames at the ROUTER during the load.")
@click.option("--threads-per-process", type=click.IntRange(1, 1000),
              help="codex.threads_per_process for the daemon (1 = one app-server per session).")
@click.option("--separate-sessions", is_flag=True,
              help="Run the load model and each subscriber in a session of its own, as a "
                   "remote model and clients elsewhere would be (Linux autogroups).")
@click.option("--daemon-env", multiple=True, metavar="KEY=VALUE",
              help="Extra environment for the daemon (config overrides ORBITDOCK_<S>__<K>).")
@click.option("--kinds", default="text,exec,patch", show_default=True,
              help=f"Turn kinds, cycled per session (from {', '.join(KINDS[:3])}).")
@click.option("--steer-every", type=int, default=0, help="Every Nth turn is steered mid-stream.")
@click.option("--interrupt-every", type=int, default=0, help="Every Nth turn is interrupted.")
@click.option("--think", type=float, default=0.2, show_default=True,
              help="Seconds between a turn's end and the session's next prompt.")
@click.option("--ramp", type=float, default=None, help="Spread first prompts over S seconds.")
@click.option("--turn-timeout", type=float, default=90, show_default=True)
@click.option("--reply-chars", type=int, default=240, show_default=True,
              help="Length of each scripted reply.")
@click.option("--chunk", type=int, default=12, show_default=True, help="Characters per delta.")
@click.option("--delay-ms", type=float, default=0, help="Pause between streamed deltas.")
@click.option("--grace", type=float, default=1.0, show_default=True,
              help="Published-but-not-committed allowance before a kill -9 (s).")
@click.option("--drain", type=float, default=60, show_default=True,
              help="At the end, how long running turns may take to finish.")
@click.option("--resume-limit", type=float, default=2.0, show_default=True,
              help="Target: sessions of a killed app-server resumed within this (s).")
@click.option("--no-floor", is_flag=True, help="Skip the raw pyzmq floor measurement.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write results here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.option("--keep", is_flag=True, help="Keep the throw-away homes (for debugging).")
@click.option("--seed", type=int, default=1, show_default=True)
def main_command(sessions, duration, subscribers, passive, passive_interval, provider, attach,
                 kill_daemon, kill_codex, slow_subscriber, slow_pause, fuzz,
                 threads_per_process, separate_sessions, daemon_env, kinds, steer_every,
                 interrupt_every, think, ramp, turn_timeout, reply_chars, chunk, delay_ms, grace, drain, resume_limit,
                 no_floor, json_path, quiet, keep, seed) -> None:
    """Load, fault and bad-input tool for orbitdockd: N live sessions, K subscribers,
    kill -9, crashed backends, fuzzing — and a check that nothing was lost."""
    kind_list = tuple(k.strip() for k in kinds.split(",") if k.strip())
    if not kind_list or set(kind_list) - set(KINDS):
        raise click.BadParameter(f"kinds must be from {KINDS}", param_hint="--kinds")
    if attach and kill_daemon:
        raise click.UsageError("--kill-daemon needs a daemon this tool starts (drop --attach)")
    if kill_codex and provider != "codex":
        raise click.UsageError("--kill-codex needs --provider codex")
    if provider == "codex" and not attach:
        from orbitdock.codex.install import CodexNotFound, find_codex
        try:
            find_codex()
        except CodexNotFound as exc:
            click.echo(f"orbitdock-load: {exc}", err=True)
            sys.exit(EXIT_SETUP)
    cfg = RunConfig(
        sessions=sessions, duration=duration, subscribers=subscribers, passive=passive,
        provider=provider, kill_daemon=kill_daemon, kill_codex=kill_codex,
        slow_subscriber=slow_subscriber, slow_pause=slow_pause, fuzz=fuzz, attach=attach,
        threads_per_process=threads_per_process, separate_sessions=separate_sessions,
        daemon_env=_env_pairs(daemon_env),
        driver=DriverParams(provider=provider, kinds=kind_list, steer_every=steer_every,
                            interrupt_every=interrupt_every, think_s=think,
                            ramp_s=min(10.0, duration / 4) if ramp is None else ramp,
                            turn_timeout_s=turn_timeout, reply_chars=reply_chars),
        model=ModelParams(reply_chars=reply_chars, chunk=chunk, delay_ms=delay_ms),
        passive_interval=passive_interval, grace_s=grace, drain_s=drain,
        resume_limit_s=resume_limit, floor=not no_floor, quiet=quiet, keep=keep, seed=seed)
    try:
        res = run(cfg)
    except DaemonDied as exc:
        click.echo(f"orbitdock-load: FAIL: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("orbitdock-load: interrupted; everything it started is stopped", err=True)
        sys.exit(130)
    except Exception as exc:  # setup or an unexpected daemon death: say what, exit 3
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        click.echo(f"orbitdock-load: run aborted: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    click.echo("\n" + table(res))
    if res["examples"]:
        click.echo("\n  examples:\n    " + "\n    ".join(res["examples"]))
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(res, fh, indent=1, default=str)
    sys.exit(EXIT_OK if res["ok"] else EXIT_FAILED)


def _terminate(signum: int, _frame) -> None:
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the run's cleanup stops the
    # daemon, the model and the subscriber processes instead of orphaning them.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main_command.main(args=argv, prog_name="orbitdock-load", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
