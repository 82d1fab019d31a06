"""JUnit XML of a run for CI: one testsuite per scenario, one testcase per expectation."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from astrachaos.verify.classify import RecordClass


def render_junit(result: dict[str, Any]) -> str:
    """JUnit XML of one `result.json` dict."""
    return render_junit_suites([result])


def render_junit_suites(results: Sequence[dict[str, Any]]) -> str:
    """JUnit XML of several runs (one per scenario), in one `<testsuites>` document."""
    root = ET.Element("testsuites", name="astrachaos")
    tests = failures = errors = 0
    for result in results:
        suite = _suite(result)
        root.append(suite)
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
        errors += int(suite.get("errors", "0"))
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(result: dict[str, Any]) -> ET.Element:
    suite = ET.Element("testsuite", name=result["scenario"], timestamp=result["started_at"])
    props = ET.SubElement(suite, "properties")
    for name in ("run_id", "seed", "pattern", "profile", "exit_code", "verdict"):
        ET.SubElement(props, "property", name=name, value=str(result[name]))
    for name, value in result["counts"].items():
        ET.SubElement(props, "property", name=f"count.{name}", value=str(value))
    classname = f"astrachaos.{result['scenario']}"
    seconds = f"{result['throughput']['write_phase_s']:.3f}"
    failures = 0
    for e in result["expectations"]:
        case = ET.SubElement(suite, "testcase", classname=classname, name=e["name"])
        if not e["met"]:
            failures += 1
            failure = ET.SubElement(case, "failure", message=_message(result, e), type="BudgetBroken")
            failure.text = _details(result, e)
    unread = result["verification"]["unread_buckets"]
    case = ET.SubElement(suite, "testcase", classname=classname, name="verification")
    errors = 0
    if unread:
        errors = 1
        error = ET.SubElement(
            case, "error", message=f"inconclusive: {len(unread)} bucket(s) could not be read",
            type="Inconclusive",
        )  # fmt: skip
        error.text = "unread buckets: " + ", ".join(str(b) for b in unread)
    suite.set("tests", str(len(result["expectations"]) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", seconds)
    return suite


def _message(result: dict[str, Any], e: dict[str, Any]) -> str:
    relation = "<" if e["name"] == "min_writes_per_s" else ">"
    return f"{e['name']}: {e['actual']:g} {relation} budget {e['budget']:g} ({class_counts(result)})"


def _details(result: dict[str, Any], e: dict[str, Any]) -> str:
    c = result["counts"]
    lines = [
        f"budget {e['name']}: {e['budget']:g}",
        f"actual {e['name']}: {e['actual']:g}",
        f"records {c['records']}, logged by the app {c['app_logged_success']}, "
        f"acknowledged {c['acknowledged']}, present {c['present']}, silent {c['silent']}",
        f"classes: {class_counts(result)}",
    ]
    silent = result["breakdown"]["silent_by_error"]
    if silent:
        lines.append("silent by last error: " + ", ".join(f"{k} {v}" for k, v in silent.items()))
    lines.append(f"verdict: exit {result['exit_code']}: {result['verdict']}")
    return "\n".join(lines)


def class_counts(result: dict[str, Any]) -> str:
    """The non-zero classes of a result, e.g. `ok 529, recovered 707, dropped 13764`."""
    c = result["counts"]
    return ", ".join(f"{cls.value} {c[cls.value]}" for cls in RecordClass if c.get(cls.value))
