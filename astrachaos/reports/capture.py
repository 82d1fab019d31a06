"""Reports of a capture verification (`astrachaos verify --capture`): console and Markdown."""

from __future__ import annotations

from typing import Any

SHOWN = 20
_HEADLINE = ("captured", "told_success", "present", "silent")


def class_counts(result: dict[str, Any]) -> dict[str, int]:
    """The per-class counts (headline counts left out), non-zero ones only."""
    return {k: v for k, v in result["counts"].items() if k not in _HEADLINE and v}


def render_capture_markdown(result: dict[str, Any]) -> str:
    """A Markdown summary: verdict, headline, classes, faults, the first writes that are not ok."""
    c = result["counts"]
    mark = "✅" if result["exit_code"] == 0 else "❌"
    lines = [
        f"## {mark} astrachaos capture `{result['capture']}`: "
        f"exit {result['exit_code']}, {result['verdict']}",
        "",
        "| captured | told success | present | silent |",
        "|---:|---:|---:|---:|",
        f"| {c['captured']} | {c['told_success']} | {c['present']} | {c['silent']} |",
        "",
        "Classes: " + (", ".join(f"{k} {v}" for k, v in class_counts(result).items()) or "none"),
        "",
    ]
    for fault in result.get("injectors", []):
        lines.append(
            f"- fault `{fault.get('label')}` ({fault.get('name')}): {fault.get('injected', 0)} injected "
            f"of {fault.get('requests', 0)} requests {fault.get('by_type', {})}"
        )
    reasons = result.get("unverifiable_reasons", {})
    if reasons:
        lines += ["", "Unverifiable: " + "; ".join(f"{n} × {r}" for r, n in reasons.items())]
    records = result.get("records", [])
    if records:
        lines += ["", f"First {min(SHOWN, len(records))} of {len(records)} writes that are not ok:", ""]
        lines += [
            "| class | silent | key | told | error | fault | attempts |",
            "|---|---|---|---|---|---|---:|",
        ]
        for r in records[:SHOWN]:
            key = ", ".join(f"{k}={v}" for k, v in r["key"].items())
            lines.append(
                f"| {r['class']} | {'yes' if r['silent'] else ''} | `{r['keyspace']}.{r['table']}` {key} | "
                f"{r['told'] or ''} | {r['error'] or ''} | {r['fault'] or ''} | {r['attempts']} |"
            )
    unread = result.get("verification", {}).get("unread", [])
    if unread:
        lines += [
            "",
            f"**{len(unread)} partitions or tables could not be read** (exit 5 unless data was lost).",
        ]
    return "\n".join(lines) + "\n"


def render_capture_console(result: dict[str, Any]) -> Any:
    """A Rich renderable of the same summary for the terminal."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    c = result["counts"]
    head = Table(title=f"capture {escape(result['capture'])}")
    for name in ("captured", "told success", "present", "silent"):
        head.add_column(name, justify="right")
    head.add_row(str(c["captured"]), str(c["told_success"]), str(c["present"]), str(c["silent"]))
    classes = Table(title="classes")
    counts = class_counts(result)
    for name in counts:
        classes.add_column(name, justify="right")
    classes.add_row(*(str(v) for v in counts.values()))
    parts: list[Any] = [head, classes]
    for r in result.get("records", [])[:10]:
        key = ", ".join(f"{k}={v}" for k, v in r["key"].items())
        told = r["told"] or "-"
        silent = " (silent)" if r["silent"] else ""
        line = f"  {r['class']}{silent}: {r['keyspace']}.{r['table']} {key}  told {told} {r['error'] or ''}"
        parts.append(escape(f"{line} fault {r['fault'] or '-'}"))
    colour = {0: "green", 1: "red"}.get(result["exit_code"], "yellow")
    parts.append(f"[{colour}]exit {result['exit_code']}: {escape(result['verdict'])}[/]")
    return Group(*parts)
