"""The lab internet's services (run inside the inet namespace by tests/lab/internet.py).

- runner.py: one asyncio process hosting the Python services (HTTPS IP echo x2,
  all-ports target, DNS echo, dyndns2 / DuckDNS / Cloudflare emulators) with a
  control API on a Unix socket (stop/start a service, inject faults, read logs).
- echo.py, allports.py, dnsecho.py, emulators.py, dnsupdate.py: the services.
- templates/: Knot, unbound configuration templates.
The probe server is the product's own `ddns-wizard probe-server` process.
"""
