"""`watch` over many rounds, in-process (run by bench/run.py in the lab's host namespace).

    python bench/watch_rounds.py ROUNDS HISTORY_FILE

Runs the engine's Watcher.tick() ROUNDS times back to back (no sleeping: the interval
only spaces the rounds) against the configured hosts, with the history file written
as `watch` writes it. Prints one JSON object: RSS, open file descriptors and CPU time
per round, sampled along the way, and the provider requests the rounds made.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def main(rounds: int, history_path: Path) -> dict:
    from checks.config import load_config
    from checks.ddns.history import History
    from checks.ddns.updater import make_provider_client
    from checks.ddns.watch import Watcher
    from checks.redact import Redactor

    config = load_config(None)
    samples = []
    async with make_provider_client() as client:
        with History(history_path, redactor=Redactor.from_config(config)) as history:
            events: list[str] = []
            watcher = Watcher(config, client, history=history, interval_s=60, emit=events.append)
            watcher.restore()
            cpu0 = time.process_time()
            wall0 = time.perf_counter()
            last_cpu, last_round = cpu0, 0
            for i in range(1, rounds + 1):
                await watcher.tick()
                if i in (1, 10, 100) or i % 250 == 0 or i == rounds:
                    cpu = time.process_time()
                    samples.append(
                        {
                            "round": i,
                            "rss_kib": rss_kib(),
                            "fds": fds(),
                            "cpu_ms_per_round": round((cpu - last_cpu) * 1000 / (i - last_round), 2),
                        }
                    )
                    last_cpu, last_round = cpu, i
            wall = time.perf_counter() - wall0
            cpu_total = time.process_time() - cpu0
    return {
        "rounds": rounds,
        "hosts": len(config.hosts),
        "wall_s": round(wall, 2),
        "cpu_ms_per_round": round(cpu_total * 1000 / rounds, 2),
        "samples": samples,
        "events": len(events),
        "history_bytes": history_path.stat().st_size if history_path.exists() else 0,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))))
