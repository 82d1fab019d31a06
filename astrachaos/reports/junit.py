"""JUnit XML of a run for CI: one testsuite per scenario, one testcase per expectation."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from astrachaos.run.result import ExpectationOutcome, RunResult
from astrachaos.verify.classify import RecordClass


def render_junit(result: RunResult) -> str:
    """JUnit XML of one run."""
    return render_junit_suites([result])


def render_junit_suites(results: Sequence[RunResult]) -> str:
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


def _suite(result: RunResult) -> ET.Element:
    suite = ET.Element("testsuite", name=result.scenario, timestamp=result.started_at)
    props = ET.SubElement(suite, "properties")
    properties = {
        "run_id": result.run_id,
        "seed": result.random_seed,
        "pattern": result.pattern,
        "profile": result.profile,
        "exit_code": int(result.exit_code),
        "verdict": result.verdict,
    }
    for name, value in properties.items():
        ET.SubElement(props, "property", name=name, value=str(value))
    for name, value in result.counts().items():
        ET.SubElement(props, "property", name=f"count.{name}", value=str(value))
    classname = f"astrachaos.{result.scenario}"
    seconds = f"{result.throughput.write_phase_s:.3f}"
    failures = 0
    for e in result.expectations:
        case = ET.SubElement(suite, "testcase", classname=classname, name=e.name)
        if not e.met:
            failures += 1
            failure = ET.SubElement(case, "failure", message=_message(result, e), type="BudgetBroken")
            failure.text = _details(result, e)
    unread = result.verification.unread_buckets
    case = ET.SubElement(suite, "testcase", classname=classname, name="verification")
    errors = 0
    if unread:
        errors = 1
        error = ET.SubElement(
            case, "error", message=f"inconclusive: {len(unread)} bucket(s) could not be read",
            type="Inconclusive",
        )  # fmt: skip
        error.text = "unread buckets: " + ", ".join(str(b) for b in unread)
    suite.set("tests", str(len(result.expectations) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", seconds)
    return suite


def _message(result: RunResult, e: ExpectationOutcome) -> str:
    relation = "<" if e.name == "min_writes_per_s" else ">"
    return f"{e.name}: {e.actual:g} {relation} budget {e.budget:g} ({class_counts(result)})"


def _details(result: RunResult, e: ExpectationOutcome) -> str:
    v = result.verification
    lines = [
        f"budget {e.name}: {e.budget:g}",
        f"actual {e.name}: {e.actual:g}",
        f"records {v.records}, logged by the app {v.app_logged_success}, "
        f"acknowledged {v.acknowledged}, present {v.present}, silent {v.silent}",
        f"classes: {class_counts(result)}",
    ]
    silent = v.silent_by_error
    if silent:
        lines.append("silent by last error: " + ", ".join(f"{k} {n}" for k, n in silent.items()))
    lines.append(f"verdict: exit {int(result.exit_code)}: {result.verdict}")
    return "\n".join(lines)


def class_counts(result: RunResult) -> str:
    """The non-zero classes of a result, e.g. `ok 529, recovered 707, dropped 13764`."""
    counts = result.verification.counts
    return ", ".join(f"{cls.value} {counts[cls]}" for cls in RecordClass if counts.get(cls))
