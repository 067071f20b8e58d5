"""The docs a newcomer reads match the code they describe.

What a reader would notice if it drifted: a command or flag in docs/commands.md that the
CLI does not have, an example that the parser rejects, a link (or an #anchor) that goes
nowhere, a configuration key the code reads but docs/configuration.md does not explain,
an example configuration the loader refuses, a JSON key the report schema has but
docs/json.md does not name, a README that is a manual again, or README commands that are
not the ones CI and the scripts run.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import tomllib
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
COMMANDS_MD = DOCS / "commands.md"
CONFIG_MD = DOCS / "configuration.md"
JSON_MD = DOCS / "json.md"

# Pages that other work of this round is writing at the same time (the reach command,
# port mapping, keeping it running, the next-step codes, speed and scale). Links to them
# may dangle until they land; once a page exists its links and anchors are checked like
# every other.
PENDING_PAGES = {
    "docs/reach.md",
    "docs/portmap.md",
    "docs/keep.md",
    "docs/next-steps.md",
    "docs/performance.md",
}

MAX_README_LINES = 250


def _md_files() -> list[Path]:
    return [
        README,
        ROOT / "CONTRIBUTING.md",
        ROOT / "CHANGELOG.md",
        *sorted(DOCS.glob("*.md")),
    ]


def _tokens(path: Path) -> list:  # type: ignore[type-arg]
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


def _fences(path: Path) -> Iterator[tuple[str, str]]:
    for tok in _tokens(path):
        if tok.type in ("fence", "code_block"):
            yield tok.info.strip(), tok.content


def _links(path: Path) -> Iterator[str]:
    for tok in _tokens(path):
        for child in tok.children or ():
            if child.type == "link_open":
                yield str(child.attrs.get("href", ""))
            elif child.type == "image":
                yield str(child.attrs.get("src", ""))


def _slug(text: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens."""
    text = text.strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    toks = _tokens(path)
    for i, tok in enumerate(toks):
        if tok.type == "heading_open":
            inline = toks[i + 1]
            text = "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline"))
            slug = _slug(text)
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _parser() -> argparse.ArgumentParser:
    from wizard.cli import build_parser

    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_parser(words: list[str]) -> argparse.ArgumentParser | None:
    parser = _parser()
    for word in words:
        sub = _subparsers(parser)
        if word not in sub:
            return None
        parser = sub[word]
    return parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


# --------------------------------------------------------------------------- README


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; the manual belongs in docs/"


def test_readme_commands_are_the_ones_ci_and_the_scripts_run() -> None:
    shell = [
        line.strip() for info, body in _fences(README) if info in ("sh", "console", "") for line in body.splitlines()
    ]
    firsts = [shlex.split(line, comments=True) for line in shell]
    assert ["./scripts/run.sh"] in firsts, "README must show ./scripts/run.sh (set up and run the tool)"
    assert ["sudo", "./scripts/test.sh"] in firsts, "README must show sudo ./scripts/test.sh (the whole suite)"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^exec \./scripts/test\.sh\b", ci, re.M), ".ci/run must run exactly the README's test command"
    for script, runs in (
        ("run.sh", r'exec "\$venv/bin/ddns-wizard" "\$@"'),
        ("test.sh", r'exec "\$venv/bin/python" -m pytest'),
    ):
        path = ROOT / "scripts" / script
        assert path.stat().st_mode & 0o111, f"scripts/{script} is not executable"
        assert re.search(runs, path.read_text(encoding="utf-8")), f"scripts/{script} no longer runs {runs!r}"


def test_readme_install_commands_are_the_tested_ones() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("pipx install .", "uv tool install .", "pipx install '.[server]'"):
        assert command in text, f"README should document `{command}` (tests/test_install.py)"


def test_readme_links_every_docs_page() -> None:
    linked = {href.split("#")[0] for href in _links(README)}
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in linked, f"README does not link docs/{page.name}"


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("page", _md_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    if not page.exists():
        pytest.fail(f"{page.relative_to(ROOT)} is missing")
    problems = []
    for href in _links(page):
        if not href or re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I):  # http:, https:, mailto:
            continue
        target, _, anchor = href.partition("#")
        path = (page.parent / target).resolve() if target else page
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if not path.exists():
            if rel in PENDING_PAGES:
                continue
            problems.append(f"{href}: {rel} does not exist")
            continue
        if anchor and path.suffix == ".md" and anchor not in _anchors(path):
            problems.append(f"{href}: no heading #{anchor} in {rel}")
    assert not problems, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(problems)


def test_pending_pages_are_only_the_known_ones() -> None:
    # The exception above is for pages being written in parallel, not a way to hide a typo.
    assert {
        "docs/reach.md",
        "docs/portmap.md",
        "docs/keep.md",
        "docs/next-steps.md",
        "docs/performance.md",
    } == PENDING_PAGES


# --------------------------------------------------------------------------- commands


def _command_headings() -> list[list[str]]:
    """The command of each `## ...` section of docs/commands.md ("upnp list / add / remove" → three)."""
    out: list[list[str]] = []
    toks = _tokens(COMMANDS_MD)
    for i, tok in enumerate(toks):
        if tok.type == "heading_open" and tok.tag == "h2":
            text = toks[i + 1].content
            if text.startswith("Global options"):
                continue
            head, *alternatives = [part.strip() for part in text.split("/")]
            words = head.split()
            out.append(words)
            out.extend([*words[:-1], alt] for alt in alternatives)
    return out


def test_every_documented_command_exists() -> None:
    headings = _command_headings()
    assert len(headings) >= 10
    for words in headings:
        assert _command_parser(words) is not None, (
            f"docs/commands.md documents `{' '.join(words)}`, the CLI has no such command"
        )


def test_every_command_is_documented() -> None:
    """Every subcommand is in docs/commands.md, or (new capabilities) on a docs page of its own."""
    everything = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    parser = _parser()
    for name, sub in _subparsers(parser).items():
        assert f"ddns-wizard {name}" in everything, f"`ddns-wizard {name}` is documented nowhere in docs/"
        for action_name in _subparsers(sub):
            assert re.search(
                rf"ddns-wizard {name} (\S+ )*{action_name}\b|{name} [a-z /]*\b{action_name}\b",
                everything,
            ), f"`ddns-wizard {name} {action_name}` is documented nowhere in docs/"


def _synopses() -> Iterator[list[str]]:
    """Lines `ddns-wizard CMD ...` of the code blocks right under each command heading."""
    for info, body in _fences(COMMANDS_MD):
        if info:
            continue
        for line in body.splitlines():
            if line.startswith("ddns-wizard "):
                yield line.split()


def test_synopsis_flags_exist() -> None:
    synopses = list(_synopses())
    assert len(synopses) >= 10
    for words in synopses:
        parser = _parser()
        for word in words[1:3]:  # descend into `ports check`, `upnp list`...
            sub = _subparsers(parser)
            if word not in sub:
                break
            parser = sub[word]
        known = _options(parser) | _options(_parser())
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", " ".join(words[1:])):
            assert flag in known, f"`{' '.join(words[:3])}` has no option {flag} (docs/commands.md synopsis)"


# Examples that show a usage error on purpose.
DELIBERATE_ERRORS = {"ddns-wizard frobnicate"}


@pytest.mark.parametrize("page", [COMMANDS_MD, JSON_MD, CONFIG_MD, DOCS / "lab.md"], ids=lambda p: p.name)
def test_every_example_command_line_parses(page: Path) -> None:
    """`$ ddns-wizard ...` lines are real invocations: the real parser must accept them."""
    parser = _parser()
    seen = 0
    for _info, body in _fences(page):
        for line in body.splitlines():
            if not line.startswith("$ "):
                continue
            argv = shlex.split(line[2:], comments=True)
            if argv[:1] == ["sudo"]:
                argv = argv[1:]
            if argv[:1] != ["ddns-wizard"]:
                continue
            seen += 1
            if " ".join(argv) in DELIBERATE_ERRORS:
                continue
            try:
                parser.parse_args(argv[1:])
            except SystemExit as exc:  # argparse's way of refusing
                pytest.fail(f"{page.name}: the CLI refuses `{line[2:]}` (exit {exc.code})")
    if page == COMMANDS_MD:
        assert seen >= 20


# --------------------------------------------------------------------------- configuration


def _page_and_linked(page: Path) -> str:
    """A docs page plus the docs pages it links: a capability with a page of its own documents
    its keys there (keep.md's [notify], portmap.md's forwards), and the main page links it."""
    parts = [page.read_text(encoding="utf-8")]
    for href in _links(page):
        target = href.split("#")[0]
        if target.endswith(".md") and "/" not in target and (DOCS / target).exists() and target != page.name:
            parts.append((DOCS / target).read_text(encoding="utf-8"))
    return "\n".join(parts)


def _config_md_and_linked() -> str:
    return _page_and_linked(CONFIG_MD)


def _registry():  # type: ignore[no-untyped-def]
    try:
        from checks.ddns.providers import registry
    except ImportError:  # before issue 14's rooms: checks/providers/
        from checks.providers import registry  # type: ignore[no-redef]
    return registry


def _host_option_keys() -> set[str]:
    """Keys of a [[hosts]] table the code reads beyond HostConfig's own fields."""
    keys: set[str] = set()
    pattern = re.compile(r"\b(?:host|first|base|h)\.options(?:\.get\(|\[)\s*[\"'](\w+)[\"']")
    for folder in ("checks", "wizard"):
        for source in (ROOT / folder).rglob("*.py"):
            keys.update(pattern.findall(source.read_text(encoding="utf-8")))
    for spec in _registry().PROVIDERS.values():
        for f in spec.fields:
            keys.add(f.name)
            keys.update(f.aliases)
    return keys


def test_every_configuration_key_is_documented() -> None:
    import checks.config as config

    main_text = CONFIG_MD.read_text(encoding="utf-8")
    with_linked = _config_md_and_linked()
    missing = []
    not_keys = {"options", "path", "settings", "hosts", "endpoints"}
    for obj in vars(config).values():
        if not (dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == config.__name__):
            continue
        for f in dataclasses.fields(obj):
            if f.name in not_keys:
                continue
            # [endpoints] and [[hosts]] are this page's; tables added later may live on a linked page.
            text = main_text if obj.__name__ in ("Endpoints", "HostConfig") else with_linked
            if f"`{f.name}`" not in text:
                missing.append(f"{obj.__name__}.{f.name}")
    for key in sorted(_host_option_keys()):
        # A host key that belongs to a capability with its own page (keep.md's IPv6 suffix)
        # may be explained there; configuration.md links it.
        if f"`{key}`" not in with_linked:
            missing.append(f"[[hosts]] {key}")
    for table in re.findall(r"data\.get\(\"(\w+)\"", Path(config.__file__).read_text(encoding="utf-8")):
        if f"[{table}]" not in with_linked and f"[[{table}]]" not in with_linked:
            missing.append(f"[{table}]")
    assert not missing, "configuration keys the code reads but docs/configuration.md does not explain: " + ", ".join(
        missing
    )


def _complete_example() -> str:
    text = CONFIG_MD.read_text(encoding="utf-8")
    m = re.search(r"^## Complete example$.*?^```toml\n(.*?)^```", text, re.S | re.M)
    assert m, "docs/configuration.md has no ```toml block under '## Complete example'"
    return m.group(1)


def test_complete_example_loads_and_validates(tmp_path: Path) -> None:
    from checks.config import DEFAULT_ENDPOINTS, load_config

    path = tmp_path / "config.toml"
    path.write_text(_complete_example(), encoding="utf-8")
    cfg = load_config(path, must_exist=True)
    assert cfg.hosts, "the example has no [[hosts]]"
    registry = _registry()
    for host in cfg.hosts:
        assert registry.validate_host(host) == [], f"the example's {host.hostname} is refused"
    try:
        from checks.ddns.notify import notify_settings
    except ImportError:  # [notify] belongs to issue 17's work; checked where it exists
        notify_settings = None
    if notify_settings is not None and "notify" in cfg.settings:
        notify_settings(cfg)  # raises ConfigError for a [notify] table update/watch would refuse
    # The example shows the real defaults.
    for key, default in DEFAULT_ENDPOINTS.items():
        value = getattr(cfg.endpoints, key)
        assert (list(value) if isinstance(value, tuple) else value) == default, (
            f"endpoints.{key} in the example is not the default"
        )
    # ...and every provider appears in it or in the provider table.
    text = CONFIG_MD.read_text(encoding="utf-8")
    for name in registry.PROVIDERS:
        assert f"`{name}`" in text, f"provider {name} missing from docs/configuration.md"


def test_complete_example_shows_every_host_key() -> None:
    data = tomllib.loads(_complete_example())
    shown = {key for host in data["hosts"] for key in host}
    commented = set(re.findall(r"^#\s*(\w+)\s*=", _complete_example(), re.M))
    documented_here = {k for k in _host_option_keys() if f"`{k}`" in CONFIG_MD.read_text(encoding="utf-8")}
    missing = documented_here - shown - commented - {"key"}  # `key`: an alias of tsig_secret
    assert not missing, f"the complete example does not show: {sorted(missing)}"


# --------------------------------------------------------------------------- JSON


def test_every_report_schema_key_is_in_json_md() -> None:
    import json

    schema = json.loads((ROOT / "checks" / "schema" / "report-1.schema.json").read_text(encoding="utf-8"))
    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    text = _page_and_linked(JSON_MD)
    missing = sorted(k for k in keys if f"`{k}`" not in text and f"{k}," not in text and f"{{{k}" not in text)
    assert not missing, f"report@1 keys docs/json.md does not name: {missing}"


def test_every_command_json_key_is_in_json_md() -> None:
    """The keys the CLI's --json functions emit (read from their source) are named in docs/json.md
    (or on the page it links for a capability that added them)."""
    text = _page_and_linked(JSON_MD)
    keys: set[str] = set()
    for module in ("ports", "update", "upnp", "verify", "providers"):
        source = (ROOT / "wizard" / "commands" / f"{module}.py").read_text(encoding="utf-8")
        for func in re.findall(r"^def \w*json\w*\(.*?(?=^def |\Z)", source, re.S | re.M):
            keys.update(re.findall(r"\"([a-z_0-9]+)\":", func))
        m = re.search(r"JSON_KEYS = \((.*?)\)", source, re.S)
        if m:
            keys.update(re.findall(r"\"(\w+)\"", m.group(1)))
    assert len(keys) > 30
    missing = sorted(k for k in keys if not re.search(rf"`{k}`|\b{k}\b", text))
    assert not missing, f"--json keys docs/json.md does not name: {missing}"


def test_readme_command_examples_parse() -> None:
    """The README's `ddns-wizard ...` examples (inline code) are accepted by the real parser."""
    parser = _parser()
    seen = 0
    for tok in _tokens(README):
        for child in tok.children or ():
            code = child.content
            if child.type != "code_inline" or not code.startswith("ddns-wizard ") or "..." in code:
                continue
            seen += 1
            try:
                parser.parse_args(shlex.split(code)[1:])
            except SystemExit as exc:
                pytest.fail(f"README: the CLI refuses `{code}` (exit {exc.code})")
    assert seen >= 8


# --------------------------------------------------------------------------- architecture


def _architecture_tree() -> tuple[set[str], set[str]]:
    """(files, directories) the tree in docs/architecture.md names, as paths from the root."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    block = next(body for info, body in _fences(DOCS / "architecture.md") if "checks/" in body)
    files: set[str] = set()
    dirs: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        names_col, _, description = re.split(r"(\s{2,})", line.strip() + "  ", maxsplit=1)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        for name in [n.strip() for n in names_col.split(",") if n.strip()]:
            path = parent + name
            if name.endswith("/"):
                dirs.add(path.rstrip("/"))
                stack.append((indent, path))
            else:
                files.add(path)
        for extra in re.findall(r"\(\+ ([\w.]+\.py)\)", description):
            files.add(parent + extra)
    assert text and files and dirs
    return files, dirs


def test_architecture_tree_names_only_what_exists() -> None:
    files, dirs = _architecture_tree()
    missing = sorted(p for p in files if not (ROOT / p).is_file()) + sorted(
        p + "/" for p in dirs if not (ROOT / p).is_dir()
    )
    assert not missing, f"docs/architecture.md's tree names paths that do not exist: {missing}"


def test_architecture_tree_shows_every_room() -> None:
    """A new subpackage of the engine (a room) or of the views is drawn in the tree."""
    _files, dirs = _architecture_tree()
    rooms = {
        p.parent.relative_to(ROOT).as_posix()
        for top in ("checks", "wizard", "probeserver")
        if (ROOT / top).is_dir()
        for p in (ROOT / top).rglob("__init__.py")
    }
    rooms |= {"checks/schema"}
    missing = sorted(r for r in rooms if r not in dirs and r.count("/") <= 2 and not r.startswith("wizard/tui/"))
    assert not missing, f"docs/architecture.md's tree does not show: {missing}"


def test_architecture_draws_the_exception_tree_of_errors_py() -> None:
    import checks.errors as errors

    tree = [
        line.strip()
        for line in (errors.__doc__ or "").splitlines()
        if line.strip().startswith(("DdnsWizardError", "├", "└", "│"))
    ]
    assert len(tree) >= 8
    drawn = [
        line.strip()
        for _info, body in _fences(DOCS / "architecture.md")
        for line in body.splitlines()
        if line.strip().startswith(("DdnsWizardError", "├", "└", "│"))
    ]
    assert drawn == tree, "docs/architecture.md's exception tree differs from checks/errors.py's"
    for name in re.findall(r"^[├└│ ─]*(\w+)", "\n".join(tree), re.M):
        assert isinstance(getattr(errors, name, None), type), f"{name} is drawn but not in checks/errors.py"


def test_every_option_is_documented() -> None:
    """Every long option of every command appears in the docs (commands.md, or the page of a
    capability that added it)."""
    everything = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for opt in _options(parser):
            if opt.startswith("--") and opt != "--help" and opt not in everything:
                missing.append(f"{path} {opt}")
        for name, sub in _subparsers(parser).items():
            walk(sub, f"{path} {name}")

    walk(_parser(), "ddns-wizard")
    assert not missing, f"options documented nowhere in docs/: {missing}"
