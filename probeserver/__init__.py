"""The self-hostable outside prober behind ``ddns-wizard probe-server`` (extra ``ddns-wizard[server]``).

``wire`` is the protocol the engine's client shares (standard library only); ``server`` runs it
(starlette, uvicorn)."""
