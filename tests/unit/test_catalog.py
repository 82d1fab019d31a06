"""Finding scenarios by name: the search path, its order, and the errors of `resolve`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from astrachaos.config import catalog
from astrachaos.errors import InvalidScenario


def scenario_dir(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / f"{name}.yaml").write_text(f"description: from {root.name}\n")
    return root


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """An env directory, a working directory, a checkout and the package inside it."""
    checkout = tmp_path / "checkout"
    (checkout / "astrachaos").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    return {
        "env": scenario_dir(tmp_path / "env", "a"),
        "cwd": tmp_path / "work",
        "work": scenario_dir(tmp_path / "work" / "scenarios", "a", "b"),
        "checkout": scenario_dir(checkout / "scenarios", "b", "c"),
        "package": checkout / "astrachaos",
        "packaged": scenario_dir(checkout / "astrachaos" / "scenarios", "c", "d"),
    }


def test_the_search_path_is_env_then_cwd_then_package(layout: dict[str, Path]) -> None:
    found = catalog.search_path(
        {catalog.ENV_VAR: str(layout["env"])}, layout["cwd"], layout["package"]
    )
    # The checkout's top-level scenarios/ is a link to the package's: never searched on its own.
    assert found == [layout["env"], layout["work"], layout["packaged"]]


def test_the_env_variable_may_list_several_directories(tmp_path: Path) -> None:
    first, second = scenario_dir(tmp_path / "one"), scenario_dir(tmp_path / "two")
    environ = {catalog.ENV_VAR: os.pathsep.join(map(str, [first, tmp_path / "missing", second]))}
    assert catalog.search_path(environ, tmp_path, tmp_path)[:2] == [first, second]


def test_an_installed_package_does_not_look_next_to_site_packages(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    scenario_dir(site / "scenarios", "unrelated")  # another distribution's top-level directory
    packaged = scenario_dir(site / "astrachaos" / "scenarios", "shipped")
    assert catalog.search_path({}, tmp_path / "elsewhere", site / "astrachaos") == [packaged]


def test_the_same_directory_is_searched_once(layout: dict[str, Path]) -> None:
    found = catalog.search_path(
        {catalog.ENV_VAR: str(layout["work"])}, layout["cwd"], layout["package"]
    )
    assert found.count(layout["work"]) == 1


def test_the_first_directory_wins_for_a_name(layout: dict[str, Path]) -> None:
    directories = [layout["env"], layout["work"], layout["checkout"], layout["packaged"]]
    assert catalog.entries(directories) == {
        "a": layout["env"] / "a.yaml",
        "b": layout["work"] / "b.yaml",
        "c": layout["checkout"] / "c.yaml",
        "d": layout["packaged"] / "d.yaml",
    }


def test_the_environment_variable_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = scenario_dir(tmp_path / "mine", "only-mine")
    monkeypatch.setenv(catalog.ENV_VAR, str(mine))
    monkeypatch.chdir(tmp_path)
    assert catalog.resolve("only-mine") == mine / "only-mine.yaml"


def test_the_shipped_scenarios_live_in_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(catalog.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    packaged = Path(catalog.__file__).resolve().parents[1] / "scenarios"
    assert catalog.search_path() == [packaged]
    assert "queue-overflow" in catalog.entries()


def test_the_repository_folders_are_links_to_the_package_folders() -> None:
    checkout = Path(catalog.__file__).resolve().parents[2]
    for top, inside in (("scenarios", "scenarios"), ("configs", "profiles")):
        assert (checkout / top).is_symlink()
        assert (checkout / top).resolve() == checkout / "astrachaos" / inside


def test_a_suite_is_found_by_name_apart_from_the_scenarios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert catalog.resolve_suite("comprehensive").parent.name == "suites"
    assert "comprehensive" not in catalog.entries()


def test_resolve_returns_an_existing_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("{}\n")
    assert catalog.resolve(str(path), []) == path


def test_resolve_finds_a_name(layout: dict[str, Path]) -> None:
    assert catalog.resolve("d", [layout["packaged"]]) == layout["packaged"] / "d.yaml"


@pytest.mark.parametrize("argument", ["nope.yaml", "dir/nope", "nope.yml"])
def test_resolve_of_a_missing_path_says_no_such_file(argument: str) -> None:
    with pytest.raises(InvalidScenario) as caught:
        catalog.resolve(argument, [])
    assert caught.value.message == f"{argument}: no such file"


def test_resolve_of_an_unknown_name_suggests_the_closest_and_lists_all(
    layout: dict[str, Path],
) -> None:
    with pytest.raises(InvalidScenario) as caught:
        catalog.resolve("queue-overflw", [scenario_dir(layout["env"], "queue-overflow")])
    assert caught.value.message == (
        "unknown scenario 'queue-overflw' (did you mean 'queue-overflow'?); "
        "known scenarios: a, queue-overflow"
    )
    assert caught.value.hint == (
        f"searched {layout['env']}; set $ASTRACHAOS_SCENARIOS_DIR or pass a file path"
    )


def test_resolve_with_no_scenarios_anywhere_says_so() -> None:
    with pytest.raises(InvalidScenario) as caught:
        catalog.resolve("anything", [])
    assert caught.value.message == "unknown scenario 'anything'; known scenarios: (none)"


def test_an_unknown_suite_is_named_a_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidScenario) as caught:
        catalog.resolve_suite("comprehensve")
    assert caught.value.message == (
        "unknown suite 'comprehensve' (did you mean 'comprehensive'?); known suites: comprehensive"
    )
