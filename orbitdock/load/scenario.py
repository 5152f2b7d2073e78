"""One load run: set up, drive for ``duration`` seconds with faults, check, report.

Processes: this one (schedule, faults, progress, checks), the load model (for
codex), the daemon and its app-servers, the subscriber processes (0 is the
driver), optionally the fuzzer and the slow subscriber. Everything started here
is stopped here (``cleanup`` runs on every path) and every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from orbitdock.client import Client
from orbitdock.codex import login_shell
from orbitdock.codex.home import write_sim_codex_home
from orbitdock.harness import DaemonProcess, pipelined, scratch_codex_home
from orbitdock.load import faults, floor, fuzz, report, verify
from orbitdock.load.checks import count, failures, log_errors, merge_counts
from orbitdock.load.children import start_child
from orbitdock.load.fuzz import fuzz_main
from orbitdock.load.model import model_main, reply_text, steered_text
from orbitdock.load.passive import PassiveWriter
from orbitdock.load.procs import Procs
from orbitdock.load.runconfig import DaemonDied, RunConfig, code_version  # noqa: F401
from orbitdock.load.subscribers import SubSetup, state_digest
from orbitdock.protocol import messages as m

logger = logging.getLogger(__name__)

MODEL_START_S = 30.0
CREATE_TIMEOUT_S = 120.0  # all CreateSession replies (pipelined)
SNAPSHOT_TIMEOUT_S = 60.0  # all SubscribeSession replies (pipelined)
PASSIVE_CATCHUP_S = 30.0  # at the end, how long the watcher may take to import the last lines
PASSIVE_POLL_S = 0.5
QUIET_S = 0.5  # pause before the final snapshots so the last flushes land
FINAL_TIMEOUT_S = 120.0
FLOOR_SECONDS = 5.0


class Run:
    def __init__(self, cfg: RunConfig, out=sys.stdout):
        self.cfg, self.out = cfg, out
        self.model_proc = self.model_conn = None
        self.codex_home: Path | None = None
        self.ctl: DaemonProcess | None = None
        self.subs = Procs()
        self.fuzzer = self.fuzz_conn = None
        self.passive: PassiveWriter | None = None
        self.client: Client | None = None
        self.direct: list[str] = []
        self.kill_log = faults.KillLog()
        self.codex_kills: list[tuple[float, int]] = []
        self.slow: faults.SlowSubscriber | None = None
        self.samples: list[Any] = []  # daemon ProcSamples
        self.cpu_s = 0.0
        self.unexpected_exit = False
        self.floor_proc = self.floor_conn = None
        self.load_started_wall = 0.0
        self.rng = random.Random(cfg.seed)

    def say(self, text: str) -> None:
        if not self.cfg.quiet:
            print(text, file=self.out, flush=True)

    # ------------------------------------------------------------ setup
    def setup(self) -> None:
        c = self.cfg
        env = dict(c.daemon_env)
        if c.threads_per_process:
            env["ORBITDOCK_CODEX__THREADS_PER_PROCESS"] = str(c.threads_per_process)
        if c.provider == "codex" and not c.attach:
            self.model_proc, parent = start_child(model_main, c.model,
                                                  own_session=c.separate_sessions)
            self.model_conn = parent
            if not parent.poll(MODEL_START_S):
                raise RuntimeError("the load model did not start")
            url = parent.recv()[1]
            self.codex_home = scratch_codex_home("load")
            env.update(write_sim_codex_home(self.codex_home, url))
        elif c.passive and not c.attach:
            self.codex_home = scratch_codex_home("load")
            env["CODEX_HOME"] = str(self.codex_home)
        self.ctl = DaemonProcess(env=env, watcher=c.passive > 0, attach=c.attach, keep=c.keep,
                                 home_prefix="orbitdock-load-")
        self.ctl.start()
        self.client = Client(self.ctl.endpoints, timeout=10.0)
        ws = (self.codex_home or Path(self.ctl.home)) / "ws"
        requests = []
        for i in range(c.sessions):
            (ws / f"s{i:04d}").mkdir(parents=True, exist_ok=True)
            requests.append(m.CreateSession(
                provider=c.provider, cwd=str(ws / f"s{i:04d}"), name=f"load s{i:04d}",
                model="gpt-5.5" if c.provider == "codex" else None,
                approval_policy="untrusted", sandbox_mode="workspace-write"))
        replies = pipelined(self.client, requests, CREATE_TIMEOUT_S)
        self.direct = [r.session.id for r in replies]
        if c.passive:
            self.passive = PassiveWriter(self.codex_home, c.passive, c.passive_interval, str(ws))
        sub_env = {"ORBITDOCK_HOME": str(self.ctl.home), **env} if not c.attach else {}
        roles = ["driver"] + ["watch"] * max(0, c.subscribers - 1)
        if c.slow_subscriber:
            roles.append("slow")
        max_life = c.duration + c.drain_s + FINAL_TIMEOUT_S + 600
        setups = [SubSetup(i, role, sub_env, self.direct, c.driver if role == "driver" else None,
                           max_lifetime_s=max_life) for i, role in enumerate(roles)]
        self.subs.start(setups, own_session=c.separate_sessions)
        if self.passive is not None:
            self.passive.start()
        if c.fuzz:
            max_bytes = self.ctl.config.gateway.max_frame_bytes
            self.fuzzer, self.fuzz_conn = start_child(
                fuzz_main, self.ctl.endpoints.request, c.fuzz, self.direct, max_bytes, c.seed,
                c.duration + 5, own_session=c.separate_sessions)
        if c.slow_subscriber:
            pause = c.slow_pause or c.duration / 2
            self.slow = faults.SlowSubscriber(self.subs.procs[-1].pid,
                                              time.monotonic() + c.duration * 0.2, pause)

    # ------------------------------------------------------------ the load phase
    def snapshots(self, sids: list[str]) -> tuple[dict[str, Any], str]:
        replies = pipelined(self.client, [m.SubscribeSession(session_id=s) for s in sids],
                            SNAPSHOT_TIMEOUT_S)
        return {r.session.id: r.session for r in replies}, replies[0].epoch if replies else ""

    def sample(self) -> Any:
        s = self.ctl.sample()
        if s is not None:
            if self.samples and self.samples[-1].cpu_s <= s.cpu_s:
                self.cpu_s += s.cpu_s - self.samples[-1].cpu_s
            self.samples.append(s)
        return s

    def start_floor(self, rate: float) -> None:
        """The pyzmq floor measured while the load runs (see ``floor``)."""
        self.floor_proc, self.floor_conn = start_child(
            floor.floor_main, max(1, self.cfg.subscribers), len(self.direct) + self.cfg.passive,
            rate, FLOOR_SECONDS, self.cfg.model.chunk,
            daemon=False,  # it has children
            own_session=self.cfg.separate_sessions)

    def floor_during(self) -> dict[str, Any] | None:
        if self.floor_conn is None:
            return None
        if self.floor_conn.poll(FLOOR_SECONDS + 60):
            kind, value = self.floor_conn.recv()
            if kind == "floor":
                return value
            logger.error("floor measurement failed: %s", value)
        return None

    def load_phase(self) -> float:
        c = self.cfg
        t0 = time.monotonic()
        self.load_started_wall = time.time()
        end = t0 + c.duration
        next_kill = t0 + c.kill_daemon if c.kill_daemon else None
        next_codex = t0 + c.kill_codex if c.kill_codex else None
        next_line, last_events, last_at = t0 + c.progress_s, 0, t0
        floor_at = t0 + c.duration / 2 if c.floor and c.duration >= 4 * FLOOR_SECONDS else None
        self.sample()
        while time.monotonic() < end:
            time.sleep(0.05)
            self.subs.collect()
            now = time.monotonic()
            if not self.ctl.alive():
                self.unexpected_exit = True
                raise DaemonDied("the daemon died on its own (not a fault this tool injected); "
                                 f"see {self.ctl.home}/daemon.stderr and its log")
            if next_kill is not None and now >= next_kill:
                faults.kill_daemon_cycle(self.ctl, self.kill_log, self.subs.tell_driver,
                                         lambda: self.snapshots(self.direct), set(self.direct),
                                         self.ctl.config.sessions.memory_messages)
                self.samples.clear()
                self.sample()
                self.client.close()
                self.client = Client(self.ctl.endpoints, timeout=10.0)
                # a fixed schedule (t0 + k * EVERY), so a run of D seconds has D // EVERY cycles
                next_kill += c.kill_daemon
            if next_codex is not None and now >= next_codex:
                killed = faults.kill_codex_once(self.ctl, self.rng)
                if killed:
                    self.codex_kills.append(killed)
                next_codex += c.kill_codex
            if now >= next_line:
                next_line = now + c.progress_s
                s = self.sample()
                note = self.slow.tick(now, s.rss if s else 0) if self.slow else None
                agg = self.subs.aggregate()
                events = agg.get("events", 0)
                agg["ev_s"] = (events - last_events) / max(1e-9, now - last_at)
                last_events, last_at = events, now
                if s is not None:
                    agg.update(rss=s.rss, codex_procs=s.codex_procs, codex_rss=s.codex_rss,
                               cpu=100.0 * self.cpu_s / max(1e-9, now - t0))
                agg["note"] = note or ""
                self.say(report.progress_line(now - t0, agg))
                if floor_at is not None and now >= floor_at:
                    floor_at = None
                    self.start_floor(agg["ev_s"])
        if self.slow is not None:
            self.slow.resume()
        return time.monotonic() - t0

    # ------------------------------------------------------------ the checks
    def finish(self, load_s: float, started: float) -> dict[str, Any]:
        c = self.cfg
        fuzz_res = fuzz.collect(self.fuzz_conn) if self.fuzz_conn is not None else None
        drained = self.subs.drain(c.drain_s)
        written = self.passive_catchup()
        time.sleep(QUIET_S)
        sids = self.direct + list(written or {})
        snaps, _ = self.snapshots(sids)
        server = {sid: (st.revision, state_digest(st)) for sid, st in snaps.items()}
        finals = self.subs.final(server, FINAL_TIMEOUT_S)
        final_s = self.sample()
        transcript = self.transcript()
        floor_during = self.floor_during()
        window = floor_during["window"] if floor_during else (0.0, 0.0)
        lat_all, others = report.split_latencies(finals[:c.subscribers], window)
        floor_res = None
        if c.floor and lat_all:
            rate = finals[0]["stats"]["events"] / max(1.0, load_s)
            floor_res = report.summarize(floor.measure(
                max(1, c.subscribers), len(sids), rate, FLOOR_SECONDS, c.model.chunk))
        codex_account = self.codex_account() if c.kill_codex else None
        rc = self.ctl.stop()
        logs = log_errors(self.ctl.log_path)
        db = verify.read_db(self.ctl.db_path)
        v = verify.Verdict()
        verify.check_seen(v, finals, db, self.kill_log.kills, c.grace_s)
        verify.check_duplicates(v, db, finals, transcript and transcript["served"])
        driver = finals[0].get("driver", {})
        outcomes = driver.get("outcomes", [])
        expected = {o[1]: self.expected_reply(o[1], o[2]) for o in outcomes}
        verify.check_transcript(v, outcomes, expected, transcript and transcript["served"], db,
                                self.kill_log.kills, c.grace_s)
        res: dict[str, Any] = {
            "sessions": len(self.direct), "passive": c.passive, "subscribers": c.subscribers,
            "duration_s": c.duration, "elapsed_s": time.monotonic() - started, "load_s": load_s,
            "turn_outcomes": dict(sorted(count(o[3] for o in outcomes).items())),
            "turns_completed": sum(1 for o in outcomes if o[3] == "completed"),
            "turns_other": sum(1 for o in outcomes if o[3] != "completed"),
            "events_per_s": finals[0]["stats"]["events"] / max(1e-9, load_s),
            "latency": report.summarize(lat_all), "floor": floor_res,
            "floor_during": floor_during,
            "approval_to_client": report.summarize(
                v for _, v in driver.get("approval_to_client", [])),
            "approval_rtt": report.summarize(v for _, v in driver.get("approval_rtt", [])),
            "driver_errors": driver.get("errors", {}), "drain_busy": drained.get("busy", []),
            "drain_busy_detail": drained.get("busy_detail", []),
            "gaps": sum(f["stats"]["gaps"] for f in finals),
            "resyncs": sum(f["stats"]["resyncs"] for f in finals),
            "daemon_cpu_pct": 100.0 * self.cpu_s / max(1e-9, load_s),
            "daemon_rss": final_s.rss if final_s else 0,
            "daemon_rss_peak": max((s.rss for s in self.samples), default=0),
            "codex_procs": final_s.codex_procs if final_s else 0,
            "codex_rss": final_s.codex_rss if final_s else 0,
            "codex_rss_peak": max((s.codex_rss for s in self.samples), default=0),
            "mismatched": sum(len(f["mismatched"]) + len(f["behind"]) for f in finals),
            "daemon_exit": rc, "daemon_log": logs, "home": str(self.ctl.home),
            "codex_home": str(self.codex_home) if self.codex_home else None,
            "model_counts": transcript and transcript["counts"],
            "model_incidents": transcript and transcript["incidents"],
        }
        if c.kill_daemon:
            res["kill_daemon"] = faults.kill_daemon_summary(self.kill_log)
        if c.kill_codex:
            gaps = merge_counts(f["gaps_by_sid"] for f in finals[: c.subscribers])
            res["kill_codex"] = faults.kill_codex_summary(
                self.codex_kills, finals[0]["backend_events"], gaps, c.resume_limit_s)
            res["kill_codex"]["daemon_account"] = codex_account
        if self.slow is not None:
            res["slow"] = self.slow.summary(others, finals[-1])
        if fuzz_res is not None:
            fuzz_res["daemon_alive"] = not self.unexpected_exit
            res["fuzz"] = fuzz_res
        if written is not None:
            res["passive_check"] = verify.check_passive(v, written, db)
        res.update(lost=v.lost, duplicated=v.duplicated + v.phantom, phantom=v.phantom,
                   uncommitted_at_kill=v.uncommitted_at_kill,
                   uncommitted_max_age_s=v.uncommitted_max_age_s,
                   uncommitted_late=v.uncommitted_late, seen_messages=v.seen_messages,
                   checked_turns=v.checked_turns,
                   examples=v.examples + res["drain_busy_detail"][:10]
                   + driver.get("details", [])
                   + verify.explain_timeouts(outcomes, transcript and transcript["served"])[:10])
        res.update(report.steady_state(outcomes, len(self.direct), others, driver,
                                       self.load_started_wall))
        res["failures"] = failures(res, c)
        res["ok"] = not res["failures"]
        return res

    def expected_reply(self, tag: str, kind: str) -> str | None:
        chars = self.cfg.driver.reply_chars
        if self.cfg.provider != "codex":
            return None
        return steered_text(tag, chars) if kind == "steer" else reply_text(tag, chars)

    def passive_catchup(self) -> dict[str, list[tuple[str, str]]] | None:
        if self.passive is None:
            return None
        written = self.passive.stop()
        want = sum(2 * len(p) for p in written.values())
        deadline = time.monotonic() + PASSIVE_CATCHUP_S
        while time.monotonic() < deadline:
            db = verify.read_db(self.ctl.db_path)
            have = sum(1 for sid in written for r in db.rows.get(sid, [])
                       if r[2] in ("user", "assistant"))
            if have >= want:
                break
            time.sleep(PASSIVE_POLL_S)
        return written

    def codex_account(self) -> dict[str, Any] | None:
        """The daemon's own count and timing of its recoveries (``orbitdockctl codex``)."""
        try:
            return self.client.request(m.GetCodexStatus()).report["recoveries"]
        except Exception as exc:  # reported as missing, never a reason to lose the run
            logger.error("could not read the daemon's codex report: %s", exc)
            return None

    def transcript(self) -> dict[str, Any] | None:
        if self.model_conn is None:
            return None
        self.model_conn.send("transcript")
        if self.model_conn.poll(30):
            return self.model_conn.recv()[1]
        return None

    # ------------------------------------------------------------ teardown
    def cleanup(self) -> None:
        if self.slow is not None:
            try:
                self.slow.resume()
            except ProcessLookupError:
                pass
        self.subs.close()
        if self.passive is not None and self.passive.is_alive():
            self.passive.stop()
        for proc in (self.fuzzer, self.floor_proc):
            if proc is not None:
                proc.join(5)
                if proc.is_alive():
                    proc.terminate()
        if self.client is not None:
            self.client.close()
        if self.ctl is not None:
            self.ctl.stop()
            self.ctl.cleanup()
        if self.model_conn is not None:
            try:
                self.model_conn.send("stop")
            except (OSError, BrokenPipeError):
                pass
            self.model_proc.join(10)
            if self.model_proc.is_alive():
                self.model_proc.terminate()
        if self.codex_home is not None and not self.cfg.keep:
            shutil.rmtree(self.codex_home, ignore_errors=True)


def run(cfg: RunConfig, out=sys.stdout) -> dict[str, Any]:
    started = time.monotonic()
    r = Run(cfg, out)
    try:
        r.setup()
        r.say(f"orbitdock-load: {len(r.direct)} {cfg.provider} sessions, {cfg.passive} passive, "
              f"{cfg.subscribers} subscribers, {cfg.duration:.0f} s (daemon pid {r.ctl.pid}, "
              f"home {r.ctl.home})")
        # codex pays its login shell per command and per resume, and the figures depend on
        # it (docs/RELIABILITY.md, "A heavy login shell"): each run records it.
        shell = (login_shell.measure(dict(os.environ, **cfg.daemon_env),
                                     r.ctl.config.codex.login_shell_timeout_s)
                 if cfg.provider == "codex" else None)
        load_before = os.getloadavg()
        load_s = r.load_phase()
        res = r.finish(load_s, started)
        res["config"] = dataclasses.asdict(cfg)
        res["login_shell"] = dataclasses.asdict(shell) if shell else None
        res["loadavg"] = {"start": load_before, "end": os.getloadavg()}
        res["code_version"] = code_version()
        return res
    finally:
        r.cleanup()
