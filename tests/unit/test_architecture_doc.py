"""docs/architecture.md draws the engine's packages as pyproject.toml's import-linter layers define them.

The picture (one `[ package ]` box per package, one line per layer) and the table below it must name the
same packages in the same order as the `layers` contract, and the table must list every module of each
package, so the newcomer's map cannot drift from the code.
"""

from __future__ import annotations

import re
import tomllib

from tests.support.common import ROOT

DOC = ROOT / "docs" / "architecture.md"
ENGINE = ROOT / "plugins" / "pacs_backup"
SECTION = "## Packages and what each may import"


def layers() -> list[list[str]]:
    """The layers contract, top to bottom; packages of one level (`api | cli`) in their written order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    assert contract["containers"] == ["pacs_backup"]
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def section() -> str:
    text = DOC.read_text()
    assert SECTION in text, f"docs/architecture.md has no section {SECTION!r}"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def picture() -> list[list[str]]:
    """The `[ package ]` boxes of the section's first code block, a list per line that has any."""
    block = section().split("```", 2)[1]
    rows = [re.findall(r"\[ ([a-z_]+) \]", line) for line in block.splitlines()]
    return [row for row in rows if row]


def table() -> dict[str, list[str]]:
    """The package table: each package's row (in the order written) and the modules it lists."""
    rows = re.findall(r"^\| `([a-z_]+)` \|[^\n]*\| ([^|\n]*) \|$", section(), re.M)
    return {package: re.findall(r"`([a-z_0-9]+\.py)`", modules) for package, modules in rows}


def test_the_picture_draws_the_layers_of_pyproject_in_order():
    assert picture() == layers()


def test_the_table_names_the_same_packages_in_the_same_order():
    assert list(table()) == [name for layer in layers() for name in layer]


def test_every_package_of_the_engine_is_a_layer():
    packages = sorted(p.name for p in ENGINE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(name for layer in layers() for name in layer)


def test_the_table_lists_every_module_of_each_package():
    for package, listed in table().items():
        present = sorted(p.name for p in (ENGINE / package).glob("*.py") if p.name != "__init__.py")
        assert sorted(listed) == present, f"docs/architecture.md, package {package}: update its modules"
