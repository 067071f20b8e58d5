"""Phases of one `ddns-wizard update`, in-process (run by bench/run.py in the lab's host namespace).

    python bench/update_phases.py seq|par

seq: one after the other (echo quorum, then the authoritative lookup, then the update);
par: the authoritative lookup alongside the echo quorum (how `update` runs them).
Prints one JSON object of seconds per phase and the provider's reply code.
"""

import asyncio
import json
import sys
import time

t_start = time.perf_counter()
# Imported after the clock starts on purpose: the import time is one of the phases.
from checks.config import load_config  # noqa: E402
from checks.ddns.providers.registry import get_provider  # noqa: E402
from checks.ddns.updater import default_lookup, detect_public, make_provider_client  # noqa: E402

t_imp = time.perf_counter()
mode = sys.argv[1]


async def main():
    cfg = load_config(None)
    host = cfg.hosts[0]
    out = {}
    t0 = time.perf_counter()
    async with make_provider_client() as client:
        t1 = time.perf_counter()
        out["client"] = t1 - t0
        if mode == "seq":
            pub = await detect_public(cfg, client, want_ipv6=False)
            t2 = time.perf_counter()
            out["echo"] = t2 - t1
            await default_lookup(host.hostname, cfg.endpoints.resolvers)
            t3 = time.perf_counter()
            out["dns"] = t3 - t2
        else:
            pub, _current = await asyncio.gather(
                detect_public(cfg, client, want_ipv6=False), default_lookup(host.hostname, cfg.endpoints.resolvers)
            )
            t3 = time.perf_counter()
            out["echo+dns"] = t3 - t1
        spec = get_provider(host.provider)
        r = await spec.update(host, pub.ipv4, None, client)
        t4 = time.perf_counter()
        out["update"] = t4 - t3
    out["total_async"] = time.perf_counter() - t0
    return out, r.code


out, code = asyncio.run(main())
out["imports"] = t_imp - t_start
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}), code)
