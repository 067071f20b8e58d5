"""One process for the lab internet's Python services, controlled over a Unix socket.

Usage (inside the inet namespace): ``python -m tests.lab.services.runner CONFIG.json``.
Writes ``ready`` into CONFIG's ``ready_file`` once every service is bound.

Control API (HTTP over the Unix socket ``control_socket``):
- ``GET /services`` -> {name: running}
- ``POST /services/{name}/stop`` | ``/start``
- ``PUT /faults/{name}`` body ``{"fault": "500"|"timeout"|"garbage"|"911"|"wrong-ip"|null}``
- ``GET /log/{name}`` -> list of request entries; ``DELETE /log/{name}`` clears it
- ``GET /cloudflare/records`` -> the Cloudflare emulator's records; ``POST`` one
  ``{type, name, content, proxied?, ttl?, zone_id?}`` to seed it (written to Knot)
- ``GET|POST /cloudflare/zones`` (``{name}``: a further zone, e.g. an IDN one, below the lab zone)
- ``POST /cloudflare/tokens`` ``{token, perms: [zone:read|dns:read|dns:edit], zones: [ids]|null}``
- fault ``"agent-refused"`` for dyndns2: ``good 127.0.0.1`` for every host, nothing written
- ``PUT /ratelimit/{name}`` body ``{"window_s": 60, "over_limit": "429"|"drop", "reset": true}``
  -> the port checker model's limit knobs (``ifconfig``; see portcheckers.py)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .allports import AllPorts
from .dnsecho import DnsEcho
from .dnsupdate import Authority
from .echo import build_echo_app
from .emulators import build_cloudflare, build_duckdns, build_dyndns2
from .httpcommon import HttpsService, ServiceState, _Server
from .portcheckers import EchoipModel, PortcheckerModel
from .sink import build_sink


class _DnsEchoService:
    def __init__(self, state: ServiceState, addresses: list[str]) -> None:
        self.state = state
        self.echo = DnsEcho(addresses)
        self.echo.log = state.log
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if not self._running:
            self.echo.fault = self.state.fault
            await self.echo.start()
            self._running = True

    async def stop(self) -> None:
        await self.echo.stop()
        self._running = False


def build_services(config: dict[str, Any]) -> dict[str, Any]:
    cert, key = config["cert"], config["key"]
    auth = Authority(**config["authority"])
    ttl = int(config["zone_ttl"])
    services: dict[str, Any] = {}
    spec = config["services"]
    for name in ("echo1", "echo2"):
        if name in spec:
            state = ServiceState(name)
            services[name] = HttpsService(state, build_echo_app(state), spec[name]["addresses"], 443, cert, key)
    for name, model in (("ifconfig", EchoipModel), ("portchecker", PortcheckerModel)):
        if name in spec:
            state = ServiceState(name)
            app = model(state)
            service = HttpsService(state, app, spec[name]["addresses"], 443, cert, key)
            service.model = app  # type: ignore[attr-defined]
            services[name] = service
    if "allports" in spec:
        services["allports"] = AllPorts(ServiceState("allports"), spec["allports"]["address"], spec["allports"]["port"])
    if "dns-echo" in spec:
        services["dns-echo"] = _DnsEchoService(ServiceState("dns-echo"), spec["dns-echo"]["addresses"])
    if "dyndns2" in spec:
        s = spec["dyndns2"]
        state = ServiceState("dyndns2")
        services["dyndns2"] = HttpsService(
            state, build_dyndns2(state, s["account"], auth, s["zone"], ttl), s["addresses"], 443, cert, key
        )
    if "duckdns" in spec:
        s = spec["duckdns"]
        state = ServiceState("duckdns")
        services["duckdns"] = HttpsService(
            state, build_duckdns(state, s["account"], auth, s["zone"], ttl), s["addresses"], 443, cert, key
        )
    if "cloudflare" in spec:
        s = spec["cloudflare"]
        state = ServiceState("cloudflare")
        services["cloudflare"] = HttpsService(
            state, build_cloudflare(state, s["account"], auth, ttl), s["addresses"], 443, cert, key
        )
    if "sink" in spec:
        state = ServiceState("sink")
        services["sink"] = HttpsService(
            state, build_sink(state), spec["sink"]["addresses"], spec["sink"]["port"], None, None
        )  # plain HTTP: apprise's json:// scheme
    return services


def build_control(services: dict[str, Any]) -> Starlette:
    def unknown(name: str) -> JSONResponse:
        return JSONResponse({"error": f"no service {name!r}"}, status_code=404)

    async def list_services(request: Request) -> JSONResponse:
        return JSONResponse({name: svc.running for name, svc in services.items()})

    async def stop(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in services:
            return unknown(name)
        await services[name].stop()
        return JSONResponse({"name": name, "running": False})

    async def start(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in services:
            return unknown(name)
        await services[name].start()
        return JSONResponse({"name": name, "running": True})

    async def fault(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in services:
            return unknown(name)
        value = (await request.json()).get("fault")
        services[name].state.fault = value
        if isinstance(services[name], _DnsEchoService):
            services[name].echo.fault = value
        return JSONResponse({"name": name, "fault": value})

    async def log(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in services:
            return unknown(name)
        entries = services[name].state.log
        if request.method == "DELETE":
            entries.clear()
            return JSONResponse([])
        return JSONResponse(list(entries))

    async def ratelimit(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        model = getattr(services.get(name), "model", None)
        if model is None:
            return unknown(name)
        return JSONResponse(model.control(await request.json()))

    async def cloudflare_records(request: Request) -> JSONResponse:
        cf = services["cloudflare"].state.cloudflare
        if request.method == "POST":  # seed a record, as made in the dashboard (written to Knot)
            body = await request.json()
            record = await cf.add_record(
                body["type"],
                body["name"],
                body["content"],
                proxied=bool(body.get("proxied", False)),
                ttl=int(body.get("ttl", 1)),
                zone_id=body.get("zone_id"),
            )
            return JSONResponse(record)
        return JSONResponse(list(cf.records.values()))

    async def cloudflare_zones(request: Request) -> JSONResponse:
        cf = services["cloudflare"].state.cloudflare
        if request.method == "POST":
            try:
                zid = cf.add_zone((await request.json())["name"])
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"id": zid, "name": cf.zones[zid]})
        return JSONResponse([{"id": k, "name": v} for k, v in cf.zones.items()])

    async def cloudflare_tokens(request: Request) -> JSONResponse:
        body = await request.json()
        services["cloudflare"].state.cloudflare.add_token(
            body["token"], list(body.get("perms", [])), body.get("zones"), body.get("status", "active")
        )
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/services", list_services, methods=["GET"]),
            Route("/services/{name}/stop", stop, methods=["POST"]),
            Route("/services/{name}/start", start, methods=["POST"]),
            Route("/faults/{name}", fault, methods=["PUT"]),
            Route("/log/{name}", log, methods=["GET", "DELETE"]),
            Route("/cloudflare/records", cloudflare_records, methods=["GET", "POST"]),
            Route("/cloudflare/zones", cloudflare_zones, methods=["GET", "POST"]),
            Route("/cloudflare/tokens", cloudflare_tokens, methods=["POST"]),
            Route("/ratelimit/{name}", ratelimit, methods=["PUT"]),
        ]
    )


async def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    services = build_services(config)
    await asyncio.gather(*(svc.start() for svc in services.values()))
    control_path = config["control_socket"]
    if os.path.exists(control_path):
        os.unlink(control_path)
    control = _Server(
        uvicorn.Config(build_control(services), uds=control_path, log_level="warning", access_log=False, lifespan="off")
    )
    control_task = asyncio.create_task(control.serve())
    while not control.started:
        if control_task.done():
            control_task.result()
        await asyncio.sleep(0.005)
    Path(config["ready_file"]).write_text("ready\n")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    control.should_exit = True
    await asyncio.gather(*(svc.stop() for svc in services.values()), return_exceptions=True)
    await control_task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
