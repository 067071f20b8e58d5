"""The long-running updater behind ``ddns-wizard watch``.

Every round: find the public address (quorum), and for each hostname whose
published address may differ, ask its authoritative servers; send an update
only when they serve something else, then check (lightly: the authoritative
answer) that the change landed.  Provider policy decides the rest:

- a fatal reply (badauth, nohost, abuse, KO, 403 ...) stops that hostname, said
  once, recorded in the history with a fingerprint of the host's configuration:
  a restarted watch keeps it stopped until the configuration changes;
- a retryable reply waits the provider's delay (``retry_after_s``: 911, dnserr,
  429 Retry-After), doubled for each further failure up to the policy ceiling;
- two updates of one hostname are never closer than ``min_interval_s``.

Restart safety: the history is read at start (last published address, pending
retry delays, stopped hosts), and DNS is asked before any send, so a restarted
watch never re-sends a change that was already applied.
Time, sleeping, the address detector and the DNS lookup are injected so the
loop can be tested without a network or a real clock.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from checks.config import Config, HostConfig
from checks.ddns.history import History
from checks.ddns.ipv6device import target_ipv6
from checks.ddns.providers.base import ProviderSpec, join_sent, wants_ipv4, wants_ipv6
from checks.ddns.updater import (
    Lookup,
    PublicAddress,
    decide,
    default_lookup,
    detect_public,
    publishes,
    refine_with_provider,
    round_lookup,
)
from checks.model import UpdateResult

log = logging.getLogger("checks.ddns.watch")

DEFAULT_INTERVAL_S = 300
STOP_GRACE_S = 5.0  # how long an in-flight request may finish after SIGTERM
VERIFY_ATTEMPTS = 3
VERIFY_PAUSE_S = 1.0
MAX_PROBLEMS_SHOWN = 10  # unusable history lines listed one by one at start; the rest counted

Detector = Callable[[], Awaitable[PublicAddress]]
Sleep = Callable[[float], Awaitable[None]]
Emit = Callable[[str], None]


def fingerprint(host: HostConfig) -> str:
    """A short, slow hash of the host's whole configuration (secrets included).

    Lets a restarted watch tell "same configuration that was refused" from "the
    user fixed it".  Slow (PBKDF2) and truncated so the history file cannot be
    used to guess a password offline.
    """
    table = json.dumps(host.to_toml_table(), sort_keys=True, default=str).encode()
    return _slow_hash(table)


@functools.lru_cache(maxsize=1024)
def _slow_hash(table: bytes) -> str:
    # ~5 ms each: callers ask only for the hosts that have a ``stopped`` record or just got
    # one (every host's fingerprint at start cost 1.8 s of a 200-host `update`: issue 18).
    return hashlib.pbkdf2_hmac("sha256", table, b"ddns-wizard/history", 20_000).hex()[:12]


def without_name(message: str, host: HostConfig) -> str:
    """Drop a leading hostname from a message printed after "hostname: " anyway."""
    prefix = host.hostname + " "
    return message[len(prefix) :] if message.startswith(prefix) else message


@dataclass
class HostState:
    host: HostConfig
    spec: ProviderSpec
    published: str | None = None  # what we believe the authoritative servers serve
    confirmed: bool = False  # `published` was confirmed this run (DNS or our own update)
    last_sent_at: float | None = None
    not_before: float = 0.0
    failures: int = 0
    stopped: str | None = None
    last_note: str | None = None  # last message shown for a non-send decision (said once)
    sent_count: int = 0

    @property
    def fingerprint(self) -> str:
        """The configuration's fingerprint (slow: computed when a stop is recorded or compared)."""
        return fingerprint(self.host)


@dataclass
class Watcher:
    config: Config
    client: Any
    history: History | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    # Looked up when a Watcher is made (not when this module is imported), as before.
    clock: Callable[[], float] = field(default_factory=lambda: time.time)
    sleep: Sleep = field(default_factory=lambda: asyncio.sleep)
    detect: Detector | None = None
    lookup: Lookup | None = None
    emit: Emit = lambda text: None
    allow_private: bool = False
    states: dict[str, HostState] = field(default_factory=dict)
    last_public: PublicAddress | None = None
    public_note: str | None = None
    # Lasting forwards this tool keeps (PCP, NAT-PMP and IPv6 pinholes only have leases): the
    # watch command hands in ``renew_forwards(now) -> sentences`` (checks.portmap.lasting.renew_due
    # over its ledger) and ``forwards_due() -> the next renewal time or None``; the DDNS room
    # itself never imports the port-mapping room.
    renew_forwards: Callable[[float], Awaitable[list[str]]] | None = None
    forwards_due: Callable[[], float | None] | None = None
    notifier: Any = None  # checks.ddns.notify.Notifier: changed/failed/recovered/stopped, pings
    state_path: Any = None  # watch.json (pid, last/next round) for `status`; None: not written
    own_lookup: bool = field(default=False, repr=False)
    # [watch] reach (checks/reach.py): the end-to-end check of each hostname's ports, at most
    # every ``reach_every_s``, recorded in the history ("reach" events); off when empty.
    reach_ports: tuple[Any, ...] = ()
    reach_every_s: float = 300.0
    reach_fn: Callable[[str, tuple[Any, ...]], Awaitable[dict[str, Any]]] | None = None
    last_reach_at: float | None = None
    last_reach: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from checks.ddns.providers.registry import get_provider
        from checks.ddns.updater import check_config

        check_config(self.config)
        if self.lookup is None:
            self.own_lookup = True  # a fresh round_lookup each round: zones looked up once per round
            self.lookup = default_lookup
        for host in self.config.hosts:
            self.states[host.hostname] = HostState(host, get_provider(host.provider))

    # ------------------------------------------------------------------ restart safety

    def restore(self) -> None:
        """Rebuild per-host state from the history (if any)."""
        if self.history is None:
            return
        read = self.history.read()
        for problem in read.problems[:MAX_PROBLEMS_SHOWN]:
            self.emit(f"history: {problem}")
        if len(read.problems) > MAX_PROBLEMS_SHOWN:
            self.emit(f"history: {len(read.problems) - MAX_PROBLEMS_SHOWN} more unusable lines ignored")
        now = self.clock()
        for record in read.records:
            try:
                self._restore_one(record, now)
            except (TypeError, ValueError, OverflowError, KeyError) as exc:
                # read_history checked the types; this is the last line of defence: a record
                # nobody foresaw must not stop the service (under systemd: a restart loop).
                self.emit(
                    f"history: a {str(record.get('event'))[:20]!r} record could not be used "
                    f"({type(exc).__name__}); ignored"
                )
        for state in self.states.values():
            if state.stopped:
                self.emit(
                    f"{state.host.hostname}: still stopped (the configuration has not changed since): {state.stopped}"
                )
            elif state.not_before > now:
                self.emit(
                    f"{state.host.hostname}: waiting {int(state.not_before - now)} s before the next "
                    f"attempt ({state.spec.title} asked to retry later)"
                )

    def _restore_one(self, record: dict[str, Any], now: float) -> None:
        state = self.states.get(str(record.get("hostname")))
        if state is None:
            return
        event = record.get("event")
        t = float(record.get("t") or 0)
        if event == "update":
            if record.get("result") in ("updated", "unchanged") and record.get("sent"):
                state.published = str(record["sent"])
                state.last_sent_at = min(t, now)
                state.not_before = 0.0
                state.stopped = None
            elif record.get("result") == "error" and record.get("retry_after_s"):
                # Never longer than the provider's own ceiling from now: a record from a clock
                # that ran ahead must not park the hostname for years.
                state.not_before = min(t + float(record["retry_after_s"]), now + state.spec.policy.max_retry_s)
                state.last_sent_at = min(t, now)
        elif event == "check" and record.get("serves"):
            state.published = str(record["serves"])
        elif event == "stopped":
            state.stopped = (
                str(record.get("message") or "stopped") if record.get("fingerprint") == state.fingerprint else None
            )

    # ------------------------------------------------------------------ one round

    async def _detect(self) -> PublicAddress:
        if self.detect is not None:
            return await self.detect()
        want6 = any(wants_ipv6(h) for h in self.config.hosts)
        return await detect_public(self.config, self.client, want_ipv6=want6)

    def _record(self, event: str, **fields: Any) -> None:
        if self.history is not None:
            try:
                self.history.append(event, **fields)
            except OSError as exc:  # a full disk must not stop the updates
                self.emit(f"history: cannot write {self.history.path}: {exc.strerror or exc}")

    async def tick(self) -> None:
        if self.own_lookup:
            self.lookup = round_lookup()
        public = await self._detect()
        if public.ipv4 is None and public.ipv6 is None:
            note = public.problem_v4 or public.problem_v6 or "the public address could not be determined"
            if note != self.public_note:
                self.emit(f"public address unknown: {note}")
                self._record("address", ipv4=None, ipv6=None, problem=note)
                self._sync()
            self.public_note = note
            return
        self.public_note = None
        previous = self.last_public
        if previous is None or (previous.ipv4, previous.ipv6) != (public.ipv4, public.ipv6):
            shown = join_sent(public.ipv4, public.ipv6)
            was = join_sent(previous.ipv4, previous.ipv6) if previous else None
            self.emit(
                f"public address {shown}"
                + (f" (was {was})" if was else "")
                + (f" — {public.summary}" if public.summary else "")
            )
            self._record("address", ipv4=public.ipv4, ipv6=public.ipv6, previous=was)
        self.last_public = public
        # Hosts are independent: one slow provider must not delay the others.
        try:
            await asyncio.gather(
                *(self._tick_host(state, public) for state in self.states.values() if state.stopped is None)
            )
            await self._reach_round()  # its history records are synced with the round's
        finally:
            self._sync()

    def _sync(self) -> None:
        """The round's history records on disk: one fsync per round, not one per line."""
        if self.history is not None:
            try:
                self.history.sync()
            except OSError as exc:
                self.emit(f"history: cannot write {self.history.path}: {exc.strerror or exc}")

    async def _reach_round(self) -> None:
        """``[watch] reach``: is each hostname reachable from outside?  ``reach_fn(hostname,
        ports)`` runs the end-to-end check and returns its history record (the watch command
        passes checks.reach's); every result goes to the history (evidence for "it stopped
        working last night"), a change of verdict is said once."""
        if not self.reach_ports or self.reach_fn is None:
            return
        now = self.clock()
        if self.last_reach_at is not None and now - self.last_reach_at < self.reach_every_s:
            return
        self.last_reach_at = now
        for state in self.active():
            name = state.host.hostname
            try:
                record = dict(await self.reach_fn(name, self.reach_ports))
            except Exception as exc:  # a failed check is a fact for the history, never the end of the watch
                self._record("reach", hostname=name, verdict="unknown", error=f"{type(exc).__name__}: {exc}")
                continue
            record["hostname"] = name
            self._record("reach", **record)
            problems = ", ".join(str(f) for f in record.get("findings", []))
            said = f"{record.get('verdict')}" + (f" ({problems})" if problems else "")
            if self.last_reach.get(name) != said:
                was = self.last_reach.get(name)
                self.emit(f"{name}: reach {said}" + (f" (was {was})" if was else ""))
                self.last_reach[name] = said

    async def _tick_host(self, state: HostState, public: PublicAddress) -> None:
        host = state.host
        now = self.clock()
        if now < state.not_before:
            return
        desired = join_sent(
            public.ipv4 if wants_ipv4(host) else None, target_ipv6(host, public.ipv6) if wants_ipv6(host) else None
        )
        if desired is None:
            return
        if state.confirmed and desired == state.published:
            return  # nothing changed: no DNS query, no update
        assert self.lookup is not None
        current = await self.lookup(host.hostname, self.config.endpoints.resolvers)
        decision = decide(host, state.spec.name, public, current, force=False, allow_private=self.allow_private)
        if decision.result is None and state.spec.published_fn is not None:
            decision = await refine_with_provider(
                state.spec, host, public, current, decision, self.client, force=False, allow_private=self.allow_private
            )
        if decision.result is not None:
            if decision.result.result == "unchanged":
                if state.published != desired or not state.confirmed:
                    self._record("check", hostname=host.hostname, serves=desired)
                    self.emit(f"{host.hostname}: DNS already serves {desired}; nothing to send")
                state.published, state.confirmed, state.last_note = desired, True, None
            elif decision.result.message != state.last_note:
                state.last_note = decision.result.message
                self.emit(f"{host.hostname}: {decision.result.message}")
                self._record(
                    "check", hostname=host.hostname, problem=decision.result.code, message=decision.result.message
                )
            await self._notify([decision.result])
            return
        if current[2] and state.published == desired:
            # DNS could not be asked, and the history says this address was already sent.
            state.confirmed = True
            self.emit(
                f"{host.hostname}: authoritative DNS did not answer ({current[2]}); the history shows "
                f"{desired} was already sent, so nothing is re-sent"
            )
            return
        min_gap = state.spec.min_interval_for(host)
        if state.last_sent_at is not None and now - state.last_sent_at < min_gap:
            state.not_before = state.last_sent_at + min_gap
            self.emit(
                f"{host.hostname}: address changed; waiting {int(state.not_before - now)} s "
                f"({state.spec.title} allows one update every {min_gap} s)"
            )
            return
        result = await state.spec.update(host, decision.send_ipv4, decision.send_ipv6, self.client)
        result = replace(result, previous=decision.previous)
        state.last_sent_at = self.clock()
        state.sent_count += 1
        self._record(
            "update",
            hostname=host.hostname,
            provider=result.provider,
            previous=result.previous,
            sent=result.sent,
            result=result.result,
            code=result.code,
            message=result.message,
            fatal=result.fatal,
            retry_after_s=result.retry_after_s,
        )
        self._handle_result(state, result, desired)
        await self._notify([result])
        if result.result in ("updated", "unchanged"):
            await self._verify(state, public, desired)

    def _handle_result(self, state: HostState, result: UpdateResult, desired: str) -> None:
        host = state.host
        if result.result in ("updated", "unchanged"):
            state.published, state.confirmed, state.failures, state.last_note = desired, True, 0, None
            self.emit(f"{host.hostname}: {result.result} ({result.code}): {without_name(result.message, host)}")
            return
        if result.fatal:
            state.stopped = result.message
            self.emit(f"{host.hostname}: STOPPED — {without_name(result.message, host)}")
            self._record(
                "stopped",
                hostname=host.hostname,
                code=result.code,
                message=result.message,
                fingerprint=state.fingerprint,
            )
            return
        state.failures += 1
        base = result.retry_after_s or state.spec.policy.default_retry_s
        wait = min(base * 2 ** (state.failures - 1), max(base, state.spec.policy.max_retry_s))
        state.not_before = self.clock() + wait
        self.emit(
            f"{host.hostname}: error ({result.code}): {without_name(result.message, host)} "
            f"Next attempt in {int(wait)} s."
        )

    async def _notify(self, results: list[UpdateResult]) -> None:
        if self.notifier is not None:
            try:
                await self.notifier.results(results)
            except Exception as exc:  # a notification problem must never cost an update
                self.emit(f"notify: {type(exc).__name__}: {exc}")

    async def _ping(self, kind: str, body: str = "") -> None:
        if self.notifier is not None:
            try:
                await self.notifier.ping(kind, body)
            except Exception as exc:
                self.emit(f"notify: ping failed: {type(exc).__name__}: {exc}")

    async def _after_round(self) -> None:
        """Tell the ping URL how the round went, once per round."""
        if self.notifier is None or not self.notifier.settings.ping:
            return
        failing = sorted(
            s.host.hostname
            for s in self.states.values()
            if s.stopped or s.failures or s.host.hostname in self.notifier.state.failing
        )
        if self.public_note:
            await self._ping("fail", f"public address unknown: {self.public_note}")
        elif failing:
            await self._ping("fail", "failing: " + ", ".join(failing))
        else:
            await self._ping("success", "every hostname is up to date")

    def _write_state(
        self,
        started_at: float,
        last_round_at: float | None,
        next_round_at: float | None,
        stopped_at: float | None = None,
    ) -> None:
        if self.state_path is not None:
            from checks.ddns.status import write_watch_state

            write_watch_state(
                self.state_path,
                started_at=started_at,
                interval_s=self.interval_s,
                last_round_at=last_round_at,
                next_round_at=next_round_at,
                stopped_at=stopped_at,
            )

    async def _verify(self, state: HostState, public: PublicAddress, desired: str) -> None:
        """Light check: do the authoritative servers now serve what was sent?"""
        assert self.lookup is not None
        host = state.host
        serves: str | None = None
        error: str | None = None
        want4 = public.ipv4 if wants_ipv4(host) else None
        want6 = target_ipv6(host, public.ipv6) if wants_ipv6(host) else None
        ok = False
        via = "authoritative DNS"
        for attempt in range(VERIFY_ATTEMPTS):
            v4, v6, error = await self.lookup(host.hostname, self.config.endpoints.resolvers)
            serves = join_sent(v4 if wants_ipv4(host) else None, v6 if wants_ipv6(host) else None)
            ok = publishes(host, (v4, v6, error), want4, want6)
            if not ok and state.spec.published_fn is not None:
                # A proxied record never shows in public DNS: the provider's own record is the check.
                view = await state.spec.published(host, self.client)
                if view.error is None and view.proxied and publishes(host, view.joined(), want4, want6):
                    ok, via = True, f"{state.spec.title}'s API (the record is proxied: DNS shows its edge)"
                    serves = join_sent(
                        view.joined()[0] if wants_ipv4(host) else None, view.joined()[1] if wants_ipv6(host) else None
                    )
            if ok:
                break
            if attempt + 1 < VERIFY_ATTEMPTS:
                await self.sleep(VERIFY_PAUSE_S)
        self._record("verify", hostname=host.hostname, expected=desired, serves=serves, ok=ok, error=error)
        if ok:
            self.emit(f"{host.hostname}: {via} now serves {desired}")
        else:
            what = f"error: {error}" if error else f"they serve {serves or 'nothing'}"
            self.emit(
                f"{host.hostname}: the provider accepted the update but the authoritative servers do not "
                f"serve {desired} yet ({what}); it will not be re-sent — check again with "
                f"`ddns-wizard verify {host.hostname}`"
            )

    # ------------------------------------------------------------------ the loop

    def active(self) -> list[HostState]:
        return [s for s in self.states.values() if s.stopped is None]

    def next_delay(self) -> float:
        now = self.clock()
        delay = float(self.interval_s)
        for s in self.active():
            if s.not_before > now:
                delay = min(delay, s.not_before - now)
        if self.forwards_due is not None:
            try:
                due = self.forwards_due()
                if due is not None:
                    delay = min(delay, max(0.0, due - now))
            except Exception:
                pass
        return max(1.0, delay)

    async def run(self, stop: asyncio.Event) -> int:
        """Until ``stop`` is set: 0 on a clean stop, 2 when every hostname is stopped (fatal)."""
        self.restore()
        self._record("start", hosts=[h.hostname for h in self.config.hosts], interval_s=self.interval_s)
        started_at = self.clock()
        last_round: float | None = None
        self._write_state(started_at, None, started_at)
        await self._ping("start", "watch started")
        code = 0
        try:
            while not stop.is_set():
                if not self.active():
                    message = (
                        "every hostname is stopped by a provider refusal; fix the configuration, then restart the watch"
                    )
                    self.emit(message)
                    if self.notifier is not None:
                        from checks.ddns.notify import Event

                        try:
                            await self.notifier.events(
                                [Event("stopped", message="The watch stopped: " + message + ".")]
                            )
                        except Exception as exc:
                            self.emit(f"notify: {type(exc).__name__}: {exc}")
                    code = 2
                    break
                tick = asyncio.ensure_future(self._safe_tick())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if tick not in done:
                    self.emit(f"stopping: letting the request in flight finish (at most {STOP_GRACE_S:.0f} s)")
                    try:
                        await asyncio.wait_for(tick, STOP_GRACE_S)
                    except (TimeoutError, asyncio.CancelledError):
                        self.emit("stopping: abandoned the request in flight")
                    break
                stopper.cancel()
                await self._after_round()
                if not self.active():
                    continue
                last_round = self.clock()
                delay = self.next_delay()
                self._write_state(started_at, last_round, last_round + delay)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            sent = sum(s.sent_count for s in self.states.values())
            self._record("stop", updates_sent=sent, exit=code)
            self._write_state(started_at, last_round, None, stopped_at=self.clock())
        return code

    async def _safe_tick(self) -> None:
        try:
            await self.tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one bad round must not end the service
            log.exception("watch round failed")
            self.emit(f"this round failed ({type(exc).__name__}: {exc}); trying again next round")
        await self._renew_forwards()

    async def _renew_forwards(self) -> None:
        """Renew the kept forwards that are due (never raises: a failure is said and retried)."""
        if self.renew_forwards is None:
            return
        try:
            notes = await asyncio.wait_for(self.renew_forwards(self.clock()), 30)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            notes = [f"renewing the kept forwards failed ({type(exc).__name__}: {exc}); trying again next round"]
        for note in notes:
            self.emit(note)
            self._record("forward", note=note)
