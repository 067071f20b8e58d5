"""Words for the keep-running features (status, service install), shared by the CLI and the TUI.

Plain text lines (no markup): the engine (checks/ddns/) returns facts; this says them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any


def _ago(iso: str | None, now: dt.datetime | None = None) -> str:
    if not iso:
        return "never"
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - t).total_seconds()
    local = t.astimezone().strftime("%Y-%m-%d %H:%M")
    if seconds < 0:
        secs = -seconds
        rel = (
            f"in {int(secs)} s"
            if secs < 120
            else f"in {int(secs // 60)} min"
            if secs < 7200
            else f"in {int(secs // 3600)} h"
        )
    elif seconds < 120:
        rel = f"{int(seconds)} s ago"
    elif seconds < 7200:
        rel = f"{int(seconds // 60)} min ago"
    elif seconds < 172800:
        rel = f"{int(seconds // 3600)} h ago"
    else:
        rel = f"{int(seconds // 86400)} days ago"
    return f"{local} ({rel})"


_RESULT_WORDS = {
    "updated": "updated",
    "unchanged": "up to date",
    "error": "FAILED",
    "stopped": "STOPPED",
    None: "no update recorded yet",
}


def status_lines(status: Any, config: Any = None) -> list[str]:
    lines: list[str] = []
    w = status.watch
    if w.running:
        how = {
            "systemd": "systemd unit ddns-wizard",
            "systemd --user": "user unit ddns-wizard",
            "pid": f"process {w.pid}",
        }.get(w.via or "", w.via or "")
        extra = f", every {w.interval_s:g} s" if w.interval_s else ""
        lines.append(f"watch: running ({how}{extra})")
        if w.last_round_at:
            lines.append(f"  last round {_ago(w.last_round_at)}; next {_ago(w.next_round_at)}")
    else:
        lines.append(
            "watch: not running"
            + (f" ({w.unit_state})" if w.unit_state else "")
            + " — `ddns-wizard service install` keeps it running"
        )
        if w.note:
            lines.append(f"  {w.note}")
    if not status.hosts:
        lines.append("No hostnames configured.")
    for h in status.hosts:
        lines.append("")
        lines.append(f"{h.hostname} ({h.provider}): {_RESULT_WORDS.get(h.last_result, h.last_result)}")
        if h.last_address:
            lines.append(f"  address   {h.last_address}, since {_ago(h.last_change_at)}")
        if h.last_error:
            code = f" ({h.last_code})" if h.last_code else ""
            lines.append(f"  last error{code} {_ago(h.last_error_at)}: {h.last_error}")
        if h.stopped:
            lines.append("  stopped: the provider refused; nothing is sent until the configuration changes")
        elif h.next_check_at:
            lines.append(f"  next check {_ago(h.next_check_at)}")
        if h.last_verify:
            v = h.last_verify
            word = (
                "DNS served what was sent"
                if v.get("ok")
                else f"DNS did not serve {v.get('expected')} (served {v.get('serves') or 'nothing'})"
            )
            lines.append(f"  last check {_ago(v.get('at'))}: {word}")
        if h.last_reach:
            r = h.last_reach
            why = "; ".join(r.get("findings") or []) or r.get("error") or ""
            lines.append(f"  reach {_ago(r.get('at'))}: {r.get('verdict') or 'unknown'}" + (f" ({why})" if why else ""))
    lines.append("")
    lines.append(f"history: {status.history}")
    for problem in status.problems[:5]:
        lines.append(f"  {problem}")
    return lines


def service_status_lines(states: Iterable[Any]) -> list[str]:
    lines: list[str] = []
    for s in states:
        if not s.installed:
            lines.append(f"{s.scope} service: not installed ({s.unit_path})")
            continue
        state = ""
        if s.systemd:
            state = f": {s.enabled or '?'}, {s.active or '?'}"
        else:
            state = ": installed, but systemd is not running on this machine"
        lines.append(f"{s.scope} service{state} ({s.unit_path})")
    return lines


def service_outcome_lines(outcome: Any, *, action: str = "install") -> list[str]:
    plan = outcome.plan
    lines: list[str] = []
    if not outcome.systemd and not outcome.dry_run and action == "install":
        lines.append(f"Not installed: {outcome.problem}.")
        lines.append("")
        lines.append(plan.cron_line)
        return lines
    if outcome.problem and not outcome.written and not outcome.steps and not outcome.removed:
        lines.append(f"Not done: {outcome.problem}.")
        return lines
    if outcome.dry_run:
        lines.append(f"Dry run: nothing is written or run. This would {action} the {plan.scope} service:")
    if action == "install":
        for w in plan.writes:
            verb = "would write" if outcome.dry_run else ("wrote" if str(w.path) in outcome.written else "NOT written")
            lines.append(f"  {verb} {w.path} ({w.what}, mode {w.mode:04o})")
        if outcome.dry_run:
            lines.append("")
            lines.append(f"--- {plan.unit_path}")
            lines.extend(plan.unit_text.rstrip("\n").splitlines())
            lines.append("---")
    else:
        for path in outcome.removed:
            lines.append(f"  {'would remove' if outcome.dry_run else 'removed'} {path}")
    why = {s.shown: s.why for s in plan.steps}
    for r in outcome.steps:
        if outcome.dry_run:
            lines.append(f"  would run: {r.shown}   # {why.get(r.shown, '')}")
        elif r.ok:
            lines.append(f"  ran: {r.shown}")
        else:
            tail = " (not required; see below)" if not r.required else ""
            lines.append(f"  FAILED: {r.shown}{tail}: {r.output or 'no output'}")
            if r.shown.startswith("loginctl enable-linger"):
                lines.append(
                    f"    Without linger the service runs only while you are logged in; ask an "
                    f"administrator to run `sudo {r.shown}`."
                )
    if outcome.problem:
        lines.append(f"Not done: {outcome.problem}.")
    elif not outcome.dry_run:
        lines.append("Done." if outcome.ok else "Stopped at the failed step; nothing after it was run.")
    for note in plan.notes:
        lines.append(note)
    if outcome.dry_run and not outcome.systemd and action == "install":
        lines.append("")
        lines.append(
            "Note: systemd is not running on this machine, so a real install would write nothing; the "
            "equivalent cron line (crontab -e) is:"
        )
        lines.append(plan.cron_line)
    return lines
