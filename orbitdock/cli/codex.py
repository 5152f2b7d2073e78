"""`orbitdockctl codex`: the app-servers behind direct Codex sessions, and their crashes."""

from __future__ import annotations

from typing import Any

import click

from orbitdock.cli.common import Context, pass_ctx
from orbitdock.protocol import messages as m

MIB = 1048576


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def shell_line(shell: dict[str, Any] | None) -> str:
    if shell is None:
        return "  login shell  not measured yet (it is, when the first app-server starts)"
    if shell.get("warning"):
        return f"  login shell  ! {shell['warning']}"  # says the time or the error itself
    return f"  login shell  {shell['shell']} -lc starts in {shell['ms']:.0f} ms"


def recovery_line(rec: dict[str, Any]) -> str:
    line = (f"  crashes      {rec['processes_lost']} app-server(s) lost; sessions resumed "
            f"{rec['resumed']}, failed {rec['failed']}, resuming now {rec['resuming']}")
    if rec["resumed"]:
        line += (f"\n               time to resume: last {seconds(rec['last_s'])}, mean "
                 f"{seconds(rec['mean_s'])}, slowest {seconds(rec['slowest_s'])}")
    return line


def render(report: dict[str, Any], show_sessions: bool) -> str:
    procs = report["processes"]
    states = {state: sum(1 for p in procs if p["state"] == state)
              for state in ("serving", "recovering", "spare")}
    rss = sum(p.get("rss_bytes", 0) for p in procs)
    pinned = "" if report["version"] == report["expected_version"] else \
        f" (orbitdock is tested with {report['expected_version']})"
    lines = [f"codex {report['version']}{pinned} at {report['binary']}",
             f"  CODEX_HOME   {report['codex_home']}",
             shell_line(report["login_shell"]),
             f"  processes    {len(procs)} ({', '.join(f'{n} {s}' for s, n in states.items())}), "
             f"{rss / MIB:.0f} MiB",
             recovery_line(report["recoveries"])]
    if procs:
        lines.append(f"  {'#':>4} {'pid':>8} {'state':11} {'sessions':>8} {'nice':>4} "
                     f"{'rss MiB':>8} {'up':>8}")
    for p in procs:
        lines.append(f"  {p['proc_id']:>4} {p['pid'] or '-':>8} {p['state']:11} {p['load']:>8} "
                     f"{p.get('nice', '-'):>4} {p.get('rss_bytes', 0) / MIB:>8.0f} "
                     f"{p.get('uptime_s', 0):>7.0f}s")
        if show_sessions and p["sessions"]:
            lines.append("         " + " ".join(p["sessions"]))
    return "\n".join(lines)


@click.command()
@click.option("--sessions", "show_sessions", is_flag=True,
              help="List the orbitdock sessions each process hosts.")
@pass_ctx
def codex(ctx: Context, show_sessions: bool) -> None:
    """App-server processes, crash recoveries, and the login shell codex starts."""
    report = ctx.request(m.GetCodexStatus()).report
    ctx.emit(report, render(report, show_sessions))


def register(group: click.Group) -> None:
    group.add_command(codex)
