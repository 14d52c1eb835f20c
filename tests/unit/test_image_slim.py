"""The images' weight (issue 29 item 6), checked without building: multi-stage builds whose runtime stage
has no pip, venv module, wheels or build tools; every apt step without recommended packages and cleaned up;
the slim dpkg/apt settings as the first layer of every image, the same instruction everywhere so the images
share it; and the figures in docs/platform.md. The stack tests build and run the images themselves."""

from __future__ import annotations

import re

import pytest

from tests.support.common import ROOT

APPLIANCE = ["orthanc/Dockerfile", "dashboard/Dockerfile", "proxy/Dockerfile", "store/Dockerfile"]
SIDE_LOADED = [f"dev/docker/Dockerfile.{name}" for name in ("minio", "versitygw", "restic", "rest-server", "postgres")]


def stages(path: str) -> list[list[str]]:
    """Each stage's instructions (FROM first), continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (ROOT / path).read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line or line.startswith("#") or (line.startswith("ARG ") and not out):
            continue
        if line.startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def runs(stage: list[str]) -> list[str]:
    return [line for line in stage if line.startswith("RUN ")]


@pytest.mark.parametrize("path", APPLIANCE + SIDE_LOADED)
def test_every_apt_step_installs_no_recommends_and_leaves_no_lists_or_cache(path: str) -> None:
    apt = [run for stage in stages(path) for run in runs(stage) if "apt-get install" in run]
    assert apt, path
    for run in apt:
        assert "--no-install-recommends" in run, run
        assert run.endswith("apt-get clean && rm -rf /var/lib/apt/lists/*"), run


def test_the_slim_settings_are_every_stage_s_first_layer_the_same_instruction_everywhere() -> None:
    firsts = {
        (path, i): runs(stage)[0]
        for path in APPLIANCE + SIDE_LOADED
        for i, stage in enumerate(stages(path))
        if stage[0].startswith("FROM ${BASE}")
    }
    assert len(firsts) == 13, firsts
    assert len(set(firsts.values())) == 1, firsts
    first = next(iter(firsts.values()))
    rules = (
        "path-exclude /usr/share/doc/*",
        "path-include /usr/share/doc/*/copyright",
        "path-exclude /usr/share/man/*",
        "path-exclude /usr/share/locale/*",
        'APT::Install-Recommends "false";',
        'Dir::Cache::pkgcache "";',
    )
    for rule in rules:
        assert rule in first, rule


def test_python_images_install_their_packages_in_a_builder_and_copy_only_the_venv() -> None:
    shared = []
    for path in ("orthanc/Dockerfile", "dashboard/Dockerfile"):
        *builders, final = stages(path)
        runtime = next(s for s in builders if s[0].endswith(" AS python-runtime"))
        venv = next(s for s in builders if s[0] == "FROM python-runtime AS venv")
        shared.append(runs(runtime))
        assert final[0] == "FROM python-runtime"
        assert "COPY --from=venv /opt/venv /opt/venv" in final
        body = "\n".join(final)
        assert "pip" not in body and "python3-venv" not in body and "wheelhouse" not in body, path
        installs = [run for run in runs(venv) if "pip install --no-cache-dir" in run]
        assert installs and "pip uninstall --no-cache-dir -q -y pip" in installs[0], path
    # Python 3 and the CA certificates: one layer on disk for both images.
    assert shared[0] == shared[1]


def test_proxy_and_object_store_share_their_curl_layer_and_side_loaded_programs_are_stripped() -> None:
    proxy = runs(stages("proxy/Dockerfile")[-1])
    for store in ("dev/docker/Dockerfile.minio", "dev/docker/Dockerfile.versitygw", "store/Dockerfile"):
        assert proxy[:2] == runs(stages(store)[-1])[:2] and "curl" in proxy[1], store
    for name in ("minio", "versitygw", "restic", "rest-server"):
        builder, final = stages(f"dev/docker/Dockerfile.{name}")
        assert f"RUN strip -o /tmp/{name}.stripped /tmp/{name}" in builder
        assert any(line.startswith(f"COPY --from=strip /tmp/{name}.stripped ") for line in final)
        assert not any("binutils" in run for run in runs(final))


def test_platform_doc_gives_sizes_and_idle_memory_before_and_after() -> None:
    text = (ROOT / "docs" / "platform.md").read_text()
    section = text.split("## Image sizes and idle memory", 1)[1].split("\n## ", 1)[0]
    for image in ("pacs-backup/orthanc", "pacs-backup/dashboard", "pacs-backup/proxy", "pacs-backup/minio"):
        row = next((ln for ln in section.splitlines() if ln.startswith(f"| `{image}")), "")
        assert row.count("→") >= 2, image
    assert "docker stats --no-stream" in section and "docker images" in section
