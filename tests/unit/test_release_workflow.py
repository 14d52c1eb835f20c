"""The release workflow (issue 28 item 2), checked without running it: on a tag it builds every image that
docker-compose.yml builds, for amd64 and arm64, with an SBOM and provenance, pushes it where the compose
file pulls it from, and signs the pushed digest with cosign. `make lint` runs actionlint on it."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.support.common import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
# ${IMAGE_REGISTRY:-<namespace>}/<name>:${APPLIANCE_VERSION:-<version>}, inside the service's own override.
IMAGE = re.compile(r"\$\{IMAGE_REGISTRY:-([^}]+)\}/([a-z0-9-]+):\$\{APPLIANCE_VERSION:-([^}]+)\}")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return workflow()["jobs"]["image"]["steps"]


def step(uses_prefix: str) -> dict:
    found = [s for s in steps() if s.get("uses", "").startswith(uses_prefix)]
    assert len(found) == 1, uses_prefix
    return found[0]


def compose_built_images() -> dict[str, tuple[str, str, str]]:
    """Image name -> (namespace default, version default, Dockerfile) of the services that have `build:`."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    out: dict[str, tuple[str, str, str]] = {}
    for name, service in services.items():
        if "extends" in service:  # the store: its file named by OBJECT_STORE's default (store/versitygw.yml)
            path = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", service["extends"]["file"])
            extended = yaml.safe_load((ROOT / path).read_text())["services"][service["extends"]["service"]]
            service = {**extended, **service}
        if "build" not in service:
            continue
        match = IMAGE.search(service["image"])
        assert match, f"{name}: {service['image']}"
        namespace, image, version = match.groups()
        entry = (namespace, version, service["build"]["dockerfile"])
        assert out.setdefault(image, entry) == entry, f"{name} disagrees with another service on {image}"
    return out


def test_runs_on_version_tags_with_the_permissions_to_push_and_sign():
    wf = workflow()
    trigger = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert trigger == {"push": {"tags": ["v*"]}}
    assert wf["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }


def test_the_matrix_is_every_image_docker_compose_builds():
    matrix = workflow()["jobs"]["image"]["strategy"]["matrix"]["include"]
    built = compose_built_images()
    assert {m["image"] for m in matrix} == set(built) == {"orthanc", "dashboard", "proxy", "store"}
    for m in matrix:
        assert m["dockerfile"] == built[m["image"]][2]


def test_both_platforms_sbom_provenance_and_push():
    with_ = step("docker/build-push-action@")["with"]
    assert set(with_["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert with_["sbom"] is True
    assert with_["provenance"] == "mode=max"
    assert with_["push"] is True
    assert with_["file"] == "${{ matrix.dockerfile }}"
    assert step("docker/setup-qemu-action@") and step("docker/setup-buildx-action@")
    assert step("docker/metadata-action@")["with"]["images"] == "${{ steps.names.outputs.image }}"


def test_the_pushed_digest_is_signed_keyless_with_cosign():
    names = [s.get("uses", "") for s in steps()]
    installer = next(i for i, u in enumerate(names) if u.startswith("sigstore/cosign-installer@"))
    build = next(i for i, u in enumerate(names) if u.startswith("docker/build-push-action@"))
    signing = [i for i, s in enumerate(steps()) if "cosign sign --yes" in s.get("run", "")]
    assert len(signing) == 1 and signing[0] > max(installer, build)
    sign = steps()[signing[0]]
    assert '"$IMAGE@$DIGEST"' in sign["run"] and "--key" not in sign["run"]  # keyless, by digest, not by tag
    assert sign["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"


def test_actions_are_pinned_by_version_or_commit():
    for s in steps():
        if "uses" in s:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", s["uses"]), s["uses"]


def test_published_where_docker_compose_pulls_from_at_the_projects_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    registry = workflow()["env"]["REGISTRY"]
    for namespace, default_version, _ in compose_built_images().values():
        assert default_version == version
        # the workflow pushes to $REGISTRY/<owner>/pacs-backup and refuses to release when compose names another
        assert re.fullmatch(rf"{re.escape(registry)}/[a-z0-9-]+/pacs-backup", namespace), namespace
    names = next(s for s in steps() if s.get("id") == "names")["run"]
    assert 'namespace="$REGISTRY/${GITHUB_REPOSITORY_OWNER,,}/pacs-backup"' in names
    assert "docker-compose.yml" in names and "pyproject.toml" in names
    # the registry host is named once, in the workflow's env
    assert WORKFLOW.read_text().count(registry) == 1


def test_make_lint_runs_actionlint_on_the_workflows_at_a_pinned_version():
    makefile = (ROOT / "Makefile").read_text()
    lint = re.search(r"^lint:[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.M)
    assert lint and "@.tools/bin/actionlint .github/workflows/*.yml" in lint.group(1)
    setup = (ROOT / "dev" / "setup").read_text()
    assert re.search(r'^ACTIONLINT_VERSION="v\d+\.\d+\.\d+"$', setup, re.M)
    assert 'go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"' in setup
