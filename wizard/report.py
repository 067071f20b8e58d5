"""Diagnostic report export: JSON, Markdown and HTML from one Diagnosis.

Three renderings of the same data (``report_data``), written atomically and
never over an existing file without ``force``.  Secrets from the configuration
are always masked; ``redact=True`` also replaces public addresses and the user's
hostnames with stable placeholders (checks.redact.AddressRedactor) and says so at
the top.
"""

from __future__ import annotations

import html
import json
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from checks import __version__
from checks.config import Config, write_private_file
from checks.errors import UsageError
from checks.model import Diagnosis, to_jsonable
from checks.redact import AddressRedactor, Redactor
from checks.summary import hosting_verdict

from .words import action_commands

FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}
_SEVERITY_MARK = {"error": "✖", "warning": "⚠", "info": "ℹ", "ok": "✔"}


def report_data(diagnosis: Diagnosis, *, config: Config | None = None, redact: bool = False) -> dict[str, Any]:
    """The JSON report object (schema ddns-wizard/report@1), redacted as asked."""
    return _report_data(diagnosis, config, redact)[0]


def _report_data(
    diagnosis: Diagnosis, config: Config | None, redact: bool
) -> tuple[dict[str, Any], AddressRedactor | None]:
    if not diagnosis.tool_version:
        diagnosis = replace(diagnosis, tool_version=__version__)
    data = to_jsonable(diagnosis)
    data.pop("extra", None)
    extra = to_jsonable(diagnosis.extra) if diagnosis.extra else {}
    reach = extra.pop("reach", None)  # the wizard's end-to-end check (checks/reach.py result_json)
    if reach:
        data["reach"] = reach
    env: dict[str, Any] = {
        "tool_version": diagnosis.tool_version or __version__,
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }
    if config is not None:
        ep = config.endpoints
        env["endpoints"] = {
            "ip_echo": list(ep.ip_echo),
            "ip_echo_v6": list(ep.ip_echo_v6),
            "dns_echo": list(ep.dns_echo),
            "dns_echo_v6": list(ep.dns_echo_v6),
            "stun": list(ep.stun),
            "port_check": list(ep.port_check),
            "port_check_v6": list(ep.port_check_v6),
            "outbound_target": ep.outbound_target,
            "resolvers": list(ep.resolvers),
        }
        env["hosts"] = [{"hostname": h.hostname, "provider": h.provider} for h in config.hosts]
    env.update({k: v for k, v in extra.items() if k not in env})
    data["environment"] = env
    data["redacted"] = bool(redact)
    secrets = Redactor.from_config(config) if config is not None else Redactor()
    data = secrets.data(data)
    red = None
    if redact:
        names = [h.hostname for h in config.hosts] if config is not None else []
        names += [v.hostname for v in diagnosis.verify] + [u.hostname for u in diagnosis.updates]
        red = AddressRedactor(hostnames=sorted(set(names)))
        data = red.data(data)
    return data, red


# --- Markdown ---------------------------------------------------------------------------


def _tls_words(tls: dict[str, Any] | None) -> str:
    if not tls:
        return "-"
    if tls.get("ok"):
        return f"valid, {tls.get('days_left')} days left" + (" (renew soon)" if tls.get("expiring_soon") else "")
    return f"invalid: {tls.get('error')}"


def _md_cell(value: Any) -> str:
    text = "—" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _blocks(text: str) -> list[str | list[str]]:
    """Engine text as paragraphs (str) and runs of "- " bullet lines (list)."""
    out: list[str | list[str]] = []
    for line in text.splitlines():
        if line.startswith("- "):
            if out and isinstance(out[-1], list):
                out[-1].append(line[2:])
            else:
                out.append([line[2:]])
        elif line.strip():
            out.append(line)
    return out


def _with_commands(fix: str, actions: Any) -> str:
    """A finding's fix with the commands for its next steps (Finding.actions) as more bullets."""
    commands = action_commands(actions or ())
    return (fix + "".join(f"\n- Run `{c}`" for c in commands)).strip("\n")


def _md_text(text: str) -> str:
    """Engine text as Markdown: paragraphs and lists apart by blank lines, so a list is a list
    and a line after it is not swallowed into its last item."""
    parts = []
    for block in _blocks(text):
        parts.append("\n".join(f"- {item}" for item in block) if isinstance(block, list) else block)
    return "\n\n".join(parts)


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: dict[str, Any], diagnosis: Diagnosis) -> str:
    verdict = hosting_verdict(diagnosis)
    # The headline is recomputed from redacted data where it quotes addresses.
    headline = _apply_same_redaction(verdict.headline, data)
    out: list[str] = ["# ddns-wizard diagnostic report", ""]
    if data.get("redacted"):
        out += [
            "> **Redacted:** public addresses were replaced by documentation addresses "
            "(203.0.113.x, 2001:db8::x) and hostnames by host-N.example; the same value always "
            "maps to the same placeholder. Private addresses are kept.",
            "",
        ]
    nat = data["nat"]
    ext = data["external"]
    loc = data["local"]
    env = data["environment"]
    out += [
        "## Summary",
        "",
        f"**{headline}**",
        "",
        _apply_same_redaction(verdict.reason, data),
        "",
        f"- Connectivity: **{data['connectivity']}**",
        f"- NAT verdict: **{nat['verdict']}**",
        f"- External IPv4: `{ext['ipv4'] or 'unknown'}`; IPv6: `{ext['ipv6'] or 'none'}`",
        f"- Generated {data['generated_at']} in {data['duration_ms']:.0f} ms by ddns-wizard "
        f"{env['tool_version']} on {env['os']}",
        "",
    ]
    findings = sorted(data["findings"], key=lambda f: _SEVERITY_ORDER.get(f["severity"], 9))
    out += ["## Findings", ""]
    if not findings:
        out += ["No findings.", ""]
    for f in findings:
        out += [
            f"### {_SEVERITY_MARK.get(f['severity'], '')} {f['title']} (`{f['id']}`, {f['severity']})",
            "",
            _md_text(f["detail"]),
            "",
        ]
        fix = _with_commands(f.get("fix") or "", f.get("actions"))
        if fix:
            out += ["**Fix:**", "", _md_text(fix), ""]
    out += [
        "## NAT verdict and evidence",
        "",
        f"Verdict: **{nat['verdict']}**; router WAN address: `{nat['router_wan_ipv4'] or 'unknown'}`",
        "",
    ]
    out += [f"- {e}" for e in nat["evidence"]] or ["- (no evidence collected)"]
    out += [""]
    out += [
        "## Addresses",
        "",
        _md_table(
            ["item", "value"],
            [
                ["interface", loc.get("interface")],
                ["local IPv4", loc.get("ipv4")],
                ["gateway", loc.get("gateway_ipv4")],
                [
                    "global IPv6",
                    ", ".join(
                        a["address"] + (" (temporary)" if a.get("temporary") else "")
                        for a in loc.get("ipv6_global", [])
                    )
                    or None,
                ],
                ["VPN interfaces", ", ".join(loc.get("vpn_interfaces", [])) or None],
                ["external IPv4", ext["ipv4"]],
                ["external IPv6", ext["ipv6"]],
                ["sources agree", "yes" if ext["agreement"] else "no"],
            ],
        ),
        "",
    ]
    if ext.get("explanation"):
        out += [ext["explanation"], ""]
    out += [
        "### Sources",
        "",
        _md_table(
            ["method", "endpoint", "answer", "ms"],
            [
                [s["method"], s["endpoint"], s["value"] or f"error: {s['error']}", f"{s['ms']:.0f}"]
                for s in ext["sources"]
            ],
        ),
        "",
    ]
    up = data["upnp"]
    out += [
        "## Router (UPnP / NAT-PMP)",
        "",
        f"UPnP IGD usable: **{'yes' if up['available'] else 'no'}**; WAN address `{up['wan_ipv4'] or 'unknown'}`"
        + (f"; NAT-PMP WAN `{up.get('natpmp_wan_ipv4')}`" if up.get("natpmp_wan_ipv4") else ""),
        "",
    ]
    router = up.get("router") or {}
    if any(router.get(k) for k in ("manufacturer", "model", "friendly_name", "presentation_url")):
        name = " ".join(p for p in (router.get("manufacturer"), router.get("model")) if p) or router.get(
            "friendly_name"
        )
        out += [
            f"Your router: {name or 'unknown model'}"
            + (f" — admin page: {router['presentation_url']}" if router.get("presentation_url") else ""),
            "",
        ]
    if up.get("pcp_available") is not None:
        out += [
            f"PCP: {'answered' if up.get('pcp_available') else 'no answer'}"
            + (
                f"; carrier ({up.get('carrier_pcp_server')}): {up.get('carrier_pcp_detail')}"
                if up.get("carrier_pcp_detail")
                else ""
            ),
            "",
        ]
    if up.get("error"):
        out += [f"UPnP: {up['error']}", ""]
    out += [_natpmp_sentence(up), ""]
    if up["mappings"]:
        out += [
            _md_table(
                ["external", "proto", "internal", "description", "lease s"],
                [
                    [m["external_port"], m["protocol"], m["internal"], m["description"], m["lease_s"]]
                    for m in up["mappings"]
                ],
            ),
            "",
        ]
    if data.get("ports"):
        out += [
            "## Port tests",
            "",
            _md_table(
                ["port", "verdict", "evidence"],
                [[f"{p['port']}/{p['protocol']}", p["verdict"], " ".join(p["evidence"])] for p in data["ports"]],
            ),
            "",
        ]
    if data.get("ports_ipv6"):
        out += [
            "## Port tests over IPv6",
            "",
            _md_table(
                ["port", "address", "verdict", "evidence"],
                [
                    [f"{p['port']}/{p['protocol']}", p["address"] or "-", p["verdict"], " ".join(p["evidence"])]
                    for p in data["ports_ipv6"]
                ],
            ),
            "",
        ]
    if data.get("outbound"):
        out += [
            "## Outbound ports",
            "",
            _md_table(
                ["port", "verdict", "ms"],
                [[f"{o['port']}/{o.get('protocol', 'tcp')}", o["verdict"], o["ms"]] for o in data["outbound"]],
            ),
            "",
        ]
    if data.get("verify"):
        out += ["## DNS verification", ""]
        for v in data["verify"]:
            out += [
                f"**{v['hostname']}**: {v['verdict']}" + (f" — {v['explanation']}" if v.get("explanation") else ""),
                "",
            ]
            rows = [
                ["authoritative", a["server"], ", ".join(a["answers"]) or a.get("error") or "—", a["ttl"]]
                for a in v["authoritative"]
            ]
            rows += [
                ["resolver", a["server"], ", ".join(a["answers"]) or a.get("error") or "—", a["ttl"]]
                for a in v["resolvers"]
            ]
            out += [_md_table(["kind", "server", "answer", "TTL"], rows), ""]
    for r in data.get("reach") or []:
        out += [
            f"## Reachable from outside: {r['hostname']}",
            "",
            f"**{r['verdict']}** (points here: {r['points_here']}; resolves to "
            f"{', '.join(r['addresses']) or 'nothing'})",
            "",
            _md_table(
                ["port", "address", "outside", "inside", "hairpin", "certificate"],
                [
                    [
                        f"{p['port']}/{p['protocol']}",
                        p["address"] or "-",
                        p["outside"],
                        p["inside"],
                        p["hairpin"],
                        _tls_words(p["tls"]),
                    ]
                    for p in r["ports"]
                ],
            ),
            "",
        ]
        out += [f"- {f['severity']}: {f['title']}" + (f" — {f['fix']}" if f["fix"] else "") for f in r["findings"]]
        out.append("")
    if data.get("updates"):
        out += [
            "## DDNS updates",
            "",
            _md_table(
                ["hostname", "provider", "result", "code", "message"],
                [[u["hostname"], u["provider"], u["result"], u["code"], u["message"]] for u in data["updates"]],
            ),
            "",
        ]
    out += [
        "## Every probe",
        "",
        _md_table(
            ["probe", "target", "status", "ms", "result"],
            [
                [p["name"], p["target"], p["status"], f"{p['ms']:.0f}", p.get("error") or p.get("summary")]
                for p in data.get("probes", [])
            ],
        ),
        "",
    ]
    if "endpoints" in env:
        out += ["## Configured endpoints", "", "```json", json.dumps(env["endpoints"], indent=2), "```", ""]
    return "\n".join(out)


def _natpmp_sentence(up: dict[str, Any]) -> str:
    """The router's NAT-PMP answer, next to UPnP's (issue 19: the section left it out)."""
    if up.get("natpmp_available"):
        return f"NAT-PMP: answered; WAN address {up.get('natpmp_wan_ipv4') or 'not given'}."
    return "NAT-PMP: no answer" + (f" ({up['natpmp_error']})" if up.get("natpmp_error") else "") + "."


def _apply_same_redaction(text: str, data: dict[str, Any]) -> str:
    """Headline/reason sentences are built from the unredacted diagnosis: redact them the
    same way as the data (placeholders follow first appearance, so re-run over data first)."""
    if not data.get("redacted"):
        return text
    red: AddressRedactor = data.get("__redactor__")  # type: ignore[assignment]
    return red.text(text) if red else text


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;--ok:#1a7f37;--info:#0969da;--warn:#9a6700;--err:#cf222e}
*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:60rem;padding:1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:2rem}
.banner{border:2px solid var(--warn);padding:.6rem;border-radius:6px}
.verdict{font-size:1.15rem;font-weight:600;padding:.8rem;border-radius:6px;border-left:6px solid var(--info);background:#f6f8fa}
.verdict.yes{border-color:var(--ok)}.verdict.likely{border-color:var(--info)}.verdict.no{border-color:var(--err)}
.verdict.unknown{border-color:var(--warn)}
.finding{border:1px solid var(--line);border-left:6px solid var(--info);border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
.finding.error{border-left-color:var(--err)}.finding.warning{border-left-color:var(--warn)}.finding.ok{border-left-color:var(--ok)}
.finding h3{margin:.2rem 0;font-size:1rem}.fix{margin:.3rem 0}.muted{color:var(--muted)}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
td.key,th.key{white-space:nowrap}.finding ul{margin:.2rem 0;padding-left:1.4rem}.finding p{margin:.3rem 0}
th{background:#f6f8fa}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
@media print{body{max-width:none;font-size:11pt}.finding,table{break-inside:avoid}a{color:inherit}}
@media (max-width:40rem){body{padding:.5rem;font-size:15px}td,th{padding:.2rem}}
"""


def _h(value: Any) -> str:
    return html.escape("—" if value is None or value == "" else str(value))


def _html_text(text: str) -> str:
    """Engine text as HTML: paragraphs, "- " lines as a list, `code` as code."""

    def inline(line: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(line))

    parts = []
    for block in _blocks(text):
        if isinstance(block, list):
            parts.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block) + "</ul>")
        else:
            parts.append(f"<p>{inline(block)}</p>")
    return "".join(parts)


def _html_table(headers: list[str], rows: list[list[Any]], *, keys: int = 1) -> str:
    """A table whose first ``keys`` columns (port, verdict, ...) never wrap inside a word."""

    def cell(tag: str, i: int, value: Any) -> str:
        return f"<{tag} class=key>{_h(value)}</{tag}>" if i < keys else f"<{tag}>{_h(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_html(data: dict[str, Any], diagnosis: Diagnosis) -> str:
    verdict = hosting_verdict(diagnosis)
    headline = _apply_same_redaction(verdict.headline, data)
    reason = _apply_same_redaction(verdict.reason, data)
    nat, ext, loc, up, env = data["nat"], data["external"], data["local"], data["upnp"], data["environment"]
    parts: list[str] = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>ddns-wizard report {_h(data['generated_at'])}</title><style>{_CSS}</style></head><body>",
        "<h1>ddns-wizard diagnostic report</h1>",
    ]
    if data.get("redacted"):
        parts.append(
            "<p class=banner><strong>Redacted:</strong> public addresses were replaced by documentation "
            "addresses (203.0.113.x, 2001:db8::x) and hostnames by host-N.example; the same value always "
            "maps to the same placeholder. Private addresses are kept.</p>"
        )
    parts += [
        f'<p class="verdict {verdict.answer}">{_h(headline)}</p><p>{_h(reason)}</p>',
        "<ul>",
        f"<li>Connectivity: <strong>{_h(data['connectivity'])}</strong></li>",
        f"<li>NAT verdict: <strong>{_h(nat['verdict'])}</strong></li>",
        f"<li>External IPv4 <code>{_h(ext['ipv4'] or 'unknown')}</code>, IPv6 <code>{_h(ext['ipv6'] or 'none')}</code></li>",
        f"<li class=muted>Generated {_h(data['generated_at'])} in {data['duration_ms']:.0f} ms by ddns-wizard "
        f"{_h(env['tool_version'])} on {_h(env['os'])}</li></ul>",
        "<h2>Findings</h2>",
    ]
    findings = sorted(data["findings"], key=lambda f: _SEVERITY_ORDER.get(f["severity"], 9))
    if not findings:
        parts.append("<p>No findings.</p>")
    for f in findings:
        fix = _with_commands(f.get("fix") or "", f.get("actions"))
        parts.append(
            f'<div class="finding {_h(f["severity"])}"><h3>{_h(_SEVERITY_MARK.get(f["severity"], ""))} {_h(f["title"])} '
            f"<span class=muted>({_h(f['id'])}, {_h(f['severity'])})</span></h3>{_html_text(f['detail'])}"
            + (f"<div class=fix><strong>Fix:</strong>{_html_text(fix)}</div>" if fix else "")
            + "</div>"
        )
    parts += [
        f"<h2>NAT verdict and evidence</h2><p>Verdict <strong>{_h(nat['verdict'])}</strong>; router WAN "
        f"<code>{_h(nat['router_wan_ipv4'] or 'unknown')}</code></p><ul>"
        + "".join(f"<li>{_h(e)}</li>" for e in nat["evidence"])
        + "</ul>"
    ]
    parts += [
        "<h2>Addresses</h2>",
        _html_table(
            ["item", "value"],
            [
                ["interface", loc.get("interface")],
                ["local IPv4", loc.get("ipv4")],
                ["gateway", loc.get("gateway_ipv4")],
                ["global IPv6", ", ".join(a["address"] for a in loc.get("ipv6_global", []))],
                ["external IPv4", ext["ipv4"]],
                ["external IPv6", ext["ipv6"]],
                ["sources agree", "yes" if ext["agreement"] else "no"],
            ],
        ),
    ]
    if ext.get("explanation"):
        parts.append(f"<p>{_h(ext['explanation'])}</p>")
    parts += [
        "<h3>Sources</h3>",
        _html_table(
            ["method", "endpoint", "answer", "ms"],
            [
                [s["method"], s["endpoint"], s["value"] or f"error: {s['error']}", f"{s['ms']:.0f}"]
                for s in ext["sources"]
            ],
        ),
    ]
    parts += [
        f"<h2>Router (UPnP / NAT-PMP)</h2><p>UPnP IGD usable: <strong>{'yes' if up['available'] else 'no'}"
        f"</strong>; WAN <code>{_h(up['wan_ipv4'] or 'unknown')}</code></p>"
    ]
    if up.get("error"):
        parts.append(f"<p>UPnP: {_h(up['error'])}</p>")
    parts.append(f"<p>{_h(_natpmp_sentence(up))}</p>")
    if up["mappings"]:
        parts.append(
            _html_table(
                ["external", "proto", "internal", "description", "lease s"],
                [
                    [m["external_port"], m["protocol"], m["internal"], m["description"], m["lease_s"]]
                    for m in up["mappings"]
                ],
            )
        )
    if data.get("ports"):
        parts += [
            "<h2>Port tests</h2>",
            _html_table(
                ["port", "verdict", "evidence"],
                [[f"{p['port']}/{p['protocol']}", p["verdict"], " ".join(p["evidence"])] for p in data["ports"]],
                keys=2,
            ),
        ]
    if data.get("ports_ipv6"):
        parts += [
            "<h2>Port tests over IPv6</h2>",
            _html_table(
                ["port", "address", "verdict", "evidence"],
                [
                    [f"{p['port']}/{p['protocol']}", p["address"] or "-", p["verdict"], " ".join(p["evidence"])]
                    for p in data["ports_ipv6"]
                ],
                keys=1,
            ),
        ]
    if data.get("outbound"):
        parts += [
            "<h2>Outbound ports</h2>",
            _html_table(
                ["port", "verdict", "ms"],
                [[f"{o['port']}/{o.get('protocol', 'tcp')}", o["verdict"], o["ms"]] for o in data["outbound"]],
                keys=3,
            ),
        ]
    if data.get("verify"):
        parts.append("<h2>DNS verification</h2>")
        for v in data["verify"]:
            parts.append(
                f"<p><strong>{_h(v['hostname'])}</strong>: {_h(v['verdict'])} {_h(v.get('explanation') or '')}</p>"
            )
            rows = [
                ["authoritative", a["server"], ", ".join(a["answers"]) or a.get("error"), a["ttl"]]
                for a in v["authoritative"]
            ]
            rows += [
                ["resolver", a["server"], ", ".join(a["answers"]) or a.get("error"), a["ttl"]] for a in v["resolvers"]
            ]
            parts.append(_html_table(["kind", "server", "answer", "TTL"], rows))
    for r in data.get("reach") or []:
        parts.append(f"<h2>Reachable from outside: {_h(r['hostname'])}</h2>")
        parts.append(
            f"<p><strong>{_h(r['verdict'])}</strong> (points here: {_h(r['points_here'])}; resolves to "
            f"{_h(', '.join(r['addresses']) or 'nothing')})</p>"
        )
        parts.append(
            _html_table(
                ["port", "address", "outside", "inside", "hairpin", "certificate"],
                [
                    [
                        f"{p['port']}/{p['protocol']}",
                        p["address"] or "-",
                        p["outside"],
                        p["inside"],
                        p["hairpin"],
                        _tls_words(p["tls"]),
                    ]
                    for p in r["ports"]
                ],
            )
        )
        parts.append(
            "<ul>"
            + "".join(
                f"<li>{_h(f['severity'])}: {_h(f['title'])}" + (f" — {_h(f['fix'])}" if f["fix"] else "") + "</li>"
                for f in r["findings"]
            )
            + "</ul>"
        )
    if data.get("updates"):
        parts += [
            "<h2>DDNS updates</h2>",
            _html_table(
                ["hostname", "provider", "result", "code", "message"],
                [[u["hostname"], u["provider"], u["result"], u["code"], u["message"]] for u in data["updates"]],
            ),
        ]
    parts += [
        "<h2>Every probe</h2>",
        _html_table(
            ["probe", "target", "status", "ms", "result"],
            [
                [p["name"], p["target"], p["status"], f"{p['ms']:.0f}", p.get("error") or p.get("summary")]
                for p in data.get("probes", [])
            ],
        ),
    ]
    if "endpoints" in env:
        parts += [
            "<h2>Configured endpoints</h2>",
            f"<pre><code>{_h(json.dumps(env['endpoints'], indent=2))}</code></pre>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def render_report(diagnosis: Diagnosis, fmt: str, *, config: Config | None = None, redact: bool = False) -> str:
    """The report as text in ``fmt`` ("json", "markdown" or "html")."""
    data, red = _report_data(diagnosis, config, redact)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    view = dict(data)
    view["__redactor__"] = red
    secrets = Redactor.from_config(config) if config is not None else Redactor()
    renderer: Callable[[dict[str, Any], Diagnosis], str] = render_markdown if fmt == "markdown" else render_html
    # Sentences built from the diagnosis pass through both the secret and the address masks.
    return secrets.text(renderer(view, diagnosis))


def format_for(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the report format from {path.name!r}: use a .json, .md or .html file name")
    return fmt


def write_report(
    diagnosis: Diagnosis, path: str | Path, *, config: Config | None = None, redact: bool = False, force: bool = False
) -> Path:
    """Write the report to ``path`` (format by suffix), atomically; refuse to clobber without ``force``."""
    p = Path(path).expanduser()
    fmt = format_for(p)
    if p.exists() and not force:
        raise UsageError(f"{p} already exists; use --force to overwrite it")
    if p.parent and not p.parent.exists():
        raise UsageError(f"directory {p.parent} does not exist")
    text = render_report(diagnosis, fmt, config=config, redact=redact)
    # Reports can be shared on purpose: 0600 is still the safe default for a file about one's network.
    write_private_file(p, text.encode("utf-8"))
    return p
