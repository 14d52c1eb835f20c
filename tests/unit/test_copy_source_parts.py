"""Every copy as a source: the view cache's cap and eviction, the registry's names, a snapshot read study by
study (fetched once, checked), a damaged bucket object refused, and the routes' answers (fakes only here)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pacs_backup.api.access import Access, Role
from pacs_backup.api.copies import study_match
from pacs_backup.api.routes import Binary, dispatch
from pacs_backup.clients.restic import RepositoryUnreachable, SnapshotInfo
from pacs_backup.contracts.errors import BadRequest, NotFound
from pacs_backup.contracts.runs import TakenSnapshot
from pacs_backup.restore.from_copies import restore_from_snapshot
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.sources.base import CopyDamaged, SourceUnavailable, StudyMatch
from pacs_backup.sources.bucket import BucketSource
from pacs_backup.sources.cache import ViewCache
from pacs_backup.sources.registry import Parts, SourceRegistry
from pacs_backup.sources.studies import select, summarize, wildcard
from pacs_backup.state.manifest import ManifestEntry, entry_from


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(study: str, sop: str, data: bytes, **kw: Any) -> ManifestEntry:
    return entry_from(
        {
            "orthanc_id": sop,
            "study_uid": study,
            "series_uid": study + ".1",
            "sop_uid": sop,
            "patient_id": kw.get("patient_id", "P1"),
            "patient_name": kw.get("patient_name", "Smith^Bella"),
            "study_date": kw.get("study_date", "20261201"),
            "modality": kw.get("modality", "CR"),
            "path": f"ab/cd/{sop}",
            "key": f"dicom/{study}/{study}.1/{sop}.dcm",
            "sha256": sha(data),
            "size": len(data),
        }
    )


def target(name: str, drive: bool = False) -> TargetSettings:
    return TargetSettings(
        name=name,
        repository=f"/mnt/{name}" if drive else f"rest:http://127.0.0.1:1/{name}",
        password="pw",
        password_file=None,
        env={},
        snapshot_interval_s=3600,
        drill_interval_s=3600,
        check_cycle=30,
        forget=False,
        keep={"daily": "7"},
        drive=drive,
    )


def snap(n: int, day: int) -> SnapshotInfo:
    sid = f"{n:02d}" + "ab" * 31
    return SnapshotInfo(sid, sid[:8], f"2026-12-{day:02d}T02:00:00.123456789Z", ("/data",), ("pacs-backup",))


class FakeRestic:
    """A repository whose snapshots hold files: ``restore`` writes the included ones and is counted."""

    def __init__(self, name: str, snaps: dict[SnapshotInfo, dict[str, bytes]]) -> None:
        self.repository = name
        self.snaps = snaps  # snapshot -> {path under /data: bytes}
        self.entries: dict[str, list[ManifestEntry]] = {}
        self.restores: list[list[str]] = []
        self.unreachable = False
        self.gate = threading.Event()
        self.gate.set()

    def snapshots(self, tag: str | None = None, max_age_s: float = 0.0) -> list[SnapshotInfo]:
        if self.unreachable:
            raise RepositoryUnreachable("The backup repository at 127.0.0.1:1 cannot be reached (refused).")
        return sorted(self.snaps, key=lambda s: s.time)

    def dump(self, snapshot: str, path: str) -> bytes:
        (s,) = [s for s in self.snaps if s.id == snapshot]
        lines = ['{"format": "pacs-backup-manifest/1"}']
        lines += [json.dumps(e) for e in self.entries[s.id]]
        return "\n".join(lines).encode()

    def restore(self, snapshot: str, target_dir: Path, includes: list[str] = (), on_file: Any = None) -> None:
        assert includes, "a restore without --include is the whole snapshot"
        self.gate.wait(10)
        self.restores.append(list(includes))
        (s,) = [s for s in self.snaps if s.id == snapshot]
        for inc in includes:
            out = Path(str(target_dir) + inc)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(self.snaps[s][inc.removeprefix("/data/")])


def repo_with(studies: dict[str, list[bytes]], snaps: list[SnapshotInfo], name: str = "rest:offsite") -> FakeRestic:
    files, entries = {}, []
    for study, blobs in studies.items():
        for n, data in enumerate(blobs):
            e = entry(study, f"{study}.1.{n}", data)
            files[e["path"]], entries = data, [*entries, e]
    restic = FakeRestic(name, {s: dict(files) for s in snaps})
    for s in snaps:
        restic.entries[s.id] = entries
    return restic


# --- the view cache -------------------------------------------------------------------------------------
def fill_with(size: int) -> Any:
    def fetch(into: Path) -> None:
        (into / "a.dcm").write_bytes(b"x" * size)

    return fetch


def test_copy_source_cache_keeps_under_its_cap_by_evicting_the_least_recently_used(tmp_path):
    clock = iter(range(1000))
    cache = ViewCache(tmp_path / "view-cache", cap_bytes=250, clock=lambda: float(next(clock)))
    for key in ("s1", "s2"):
        assert cache.read(key, "a.dcm", fill_with(100)) == b"x" * 100
    cache.read("s1", "a.dcm", fill_with(100))  # s1 looked at again: s2 is now the least recently used
    cache.read("s3", "a.dcm", fill_with(100))
    assert cache.holds("s1") and cache.holds("s3") and not cache.holds("s2")
    assert not (tmp_path / "view-cache" / "s2").exists() and cache.size() == 200
    assert cache.fetches == 3
    # owner-only, and emptied when the plugin starts again
    assert (tmp_path / "view-cache").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "view-cache" / "s1" / "a.dcm").stat().st_mode & 0o777 == 0o600
    again = ViewCache(tmp_path / "view-cache", cap_bytes=250)
    assert list((tmp_path / "view-cache").iterdir()) == [] and again.size() == 0


def test_copy_source_cache_keeps_a_study_larger_than_the_cap_until_the_next_one(tmp_path):
    cache = ViewCache(tmp_path / "c", cap_bytes=50)
    assert cache.read("big", "a.dcm", fill_with(100)) == b"x" * 100
    assert cache.holds("big")
    cache.read("next", "a.dcm", fill_with(10))
    assert not cache.holds("big") and cache.holds("next")


def test_copy_source_cache_fetches_a_study_once_for_concurrent_readers(tmp_path):
    cache = ViewCache(tmp_path / "c", cap_bytes=10_000)
    calls, started = [], threading.Event()

    def slow(into: Path) -> None:
        calls.append(1)
        started.set()
        threading.Event().wait(0.2)
        (into / "a.dcm").write_bytes(b"data")

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.read("s", "a.dcm", slow))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [b"data"] * 5 and len(calls) == 1


def test_copy_source_cache_keeps_nothing_of_a_failed_fetch(tmp_path):
    cache = ViewCache(tmp_path / "c", cap_bytes=10_000)

    def broken(into: Path) -> None:
        (into / "half.dcm").write_bytes(b"half")
        raise SourceUnavailable("The offsite server cannot be reached.")

    with pytest.raises(SourceUnavailable):
        cache.read("s", "a.dcm", broken)
    assert not cache.holds("s") and list((tmp_path / "c").iterdir()) == []


# --- the registry's names ------------------------------------------------------------------------------
class FakeSource:
    def __init__(self, name: str, kind: str, held: set[str]) -> None:
        self.held = held
        self._doc = {"name": name, "kind": kind, "label": name, "available": True, "reason": "", "taken_at": ""}

    @property
    def doc(self) -> Any:
        return self._doc

    def studies(self, match: StudyMatch) -> list[Any]:
        return [{"study_uid": s} for s in sorted(self.held) if not match.study_uid or s == match.study_uid]

    def instances(self, study_uid: str) -> list[Any]:
        raise NotFound("no")

    def read(self, instance: Any) -> bytes:
        raise NotFound("no")


def registry(tmp_path: Path, plugged: bool = True, **restics: FakeRestic) -> SourceRegistry:
    targets = [target("offsite"), target("usb", drive=True), target("b2")]
    return SourceRegistry(
        Parts(
            targets=targets,
            restic_for=lambda t: restics[t.name],  # type: ignore[arg-type, return-value]
            cache=ViewCache(tmp_path / "view-cache", 10_000_000),
            pacs=FakeSource("pacs", "pacs", {"1.2.9"}),  # type: ignore[arg-type]
            bucket=FakeSource("bucket", "bucket", {"1.2.3", "1.2.9"}),  # type: ignore[arg-type]
            drive_state=lambda t: (plugged, f"The backup drive '{t.name}' is not plugged in."),
        )
    )


def test_copy_source_registry_names_every_copy_and_each_snapshot_holding_a_study(tmp_path):
    old, new = snap(1, 1), snap(2, 3)
    offsite = repo_with({"1.2.3": [b"one"], "1.2.9": [b"nine"]}, [old])
    offsite.snaps[new] = {}
    offsite.entries[new.id] = [e for e in offsite.entries[old.id] if e["study_uid"] == "1.2.9"]  # 1.2.3 deleted
    usb = repo_with({"1.2.3": [b"one"]}, [snap(3, 2)], "/mnt/usb")
    b2 = repo_with({"1.2.9": [b"nine"]}, [snap(4, 2)], "rclone:b2:pacs")
    reg = registry(tmp_path, offsite=offsite, usb=usb, b2=b2)

    everything = [d["name"] for d in reg.list_sources()]
    assert everything == [
        "pacs",
        "bucket",
        "offsite",
        f"offsite-{new.short_id}",
        f"offsite-{old.short_id}",
        "drive-usb",
        "b2",
        f"b2-{snap(4, 2).short_id}",
    ]
    held = reg.list_sources("1.2.3")
    assert [d["name"] for d in held] == ["bucket", f"offsite-{old.short_id}", "drive-usb"]
    assert held[1]["label"] == "Offsite copy, snapshot of 1 Dec 2026 02:00 UTC" and held[1]["taken_at"] == old.time
    newest = reg.list_sources("1.2.9")
    assert [d["name"] for d in newest] == [
        "pacs",
        "bucket",
        "offsite",
        f"offsite-{new.short_id}",
        f"offsite-{old.short_id}",
        "b2",
        f"b2-{snap(4, 2).short_id}",
    ]

    assert reg.open_source(f"offsite-{old.short_id}").doc["taken_at"] == old.time
    assert reg.open_source("offsite").doc["taken_at"] == new.time
    assert reg.open_source("drive-usb").doc["kind"] == "drive"
    with pytest.raises(NotFound, match="no copy called 'usb'"):
        reg.open_source("usb")
    with pytest.raises(NotFound, match="no snapshot 0f0f0f0f"):
        reg.open_source("offsite-0f0f0f0f")


def test_copy_source_an_unplugged_drive_and_an_unreachable_server_say_so(tmp_path):
    offsite = repo_with({"1.2.3": [b"one"]}, [snap(1, 1)])
    offsite.unreachable = True
    usb = repo_with({"1.2.3": [b"one"]}, [snap(3, 2)], "/mnt/usb")
    reg = registry(tmp_path, plugged=False, offsite=offsite, usb=usb, b2=repo_with({}, []))
    docs = {d["name"]: d for d in reg.list_sources()}
    assert docs["drive-usb"]["available"] is False
    assert docs["drive-usb"]["reason"] == "The backup drive 'usb' is not plugged in."
    assert docs["offsite"]["available"] is False and "cannot be reached" in docs["offsite"]["reason"]
    assert docs["b2"]["available"] is False and "no snapshot yet" in docs["b2"]["reason"]
    drive = reg.open_source("drive-usb")
    with pytest.raises(SourceUnavailable, match="not plugged in"):
        drive.instances("1.2.3")
    with pytest.raises(SourceUnavailable, match="cannot be reached"):
        reg.open_source("offsite")


# --- a snapshot, study by study ------------------------------------------------------------------------
def test_copy_source_snapshot_fetches_only_the_study_once_and_refuses_damaged_bytes(tmp_path):
    s = snap(1, 1)
    offsite = repo_with({"1.2.3": [b"one", b"two"], "1.2.4": [b"other"]}, [s])
    reg = registry(tmp_path, offsite=offsite, usb=repo_with({}, []), b2=repo_with({}, []))
    source = reg.open_source("offsite")
    found = source.studies(StudyMatch(patient_name="smith*"))
    assert {f["study_uid"] for f in found} == {"1.2.3", "1.2.4"}
    instances = source.instances("1.2.3")
    assert [source.read(i) for i in instances] == [b"one", b"two"]
    assert [source.read(i) for i in reg.open_source(f"offsite-{s.short_id}").instances("1.2.3")] == [b"one", b"two"]
    assert offsite.restores == [["/data/ab/cd/1.2.3.1.0", "/data/ab/cd/1.2.3.1.1"]]  # one restore, this study only
    with pytest.raises(NotFound):
        source.instances("9.9.9")

    offsite.snaps[s]["ab/cd/1.2.4.1.0"] = b"changed"  # the repository gives other bytes than it recorded
    (other,) = source.instances("1.2.4")
    with pytest.raises(CopyDamaged, match="does not match the checksum"):
        source.read(other)


def test_copy_source_warm_up_after_a_snapshot_leaves_one_restic_run_for_the_first_look(tmp_path):
    """After a snapshot the plugin reads the lists and the newest manifest itself (warm), so the first look at
    a study there runs restic once (its restore), not three times (list, manifest, restore)."""
    s = snap(1, 1)
    offsite = repo_with({"1.2.3": [b"one"]}, [s])
    runs: list[str] = []
    listed, dumped = offsite.snapshots, offsite.dump
    offsite.snapshots = lambda tag=None: runs.append("snapshots") or listed(tag)  # type: ignore[method-assign]
    offsite.dump = lambda snapshot, path: runs.append("dump") or dumped(snapshot, path)  # type: ignore[method-assign]
    reg = registry(tmp_path, offsite=offsite, usb=repo_with({}, []), b2=repo_with({}, []))
    offsite.unreachable = True
    reg.warm()  # a server that cannot be reached: nothing breaks, the next look reports it
    offsite.unreachable = False
    reg.warm()
    assert runs == ["snapshots", "snapshots", "dump"]
    source = reg.open_source("offsite")
    assert [source.read(i) for i in source.instances("1.2.3")] == [b"one"]
    assert runs == ["snapshots", "snapshots", "dump"] and len(offsite.restores) == 1


class StoringOrthanc:
    """Keeps what it is sent and answers its MD5, as Orthanc does."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def upload(self, dicom: bytes) -> dict[str, Any]:
        key = sha(dicom)
        self.stored[key] = dicom
        return {"ID": key}

    def get_json(self, uri: str) -> Any:
        return {"UncompressedMD5": hashlib.md5(self.stored[uri.split("/")[2]], usedforsecurity=False).hexdigest()}


def test_copy_source_a_study_restored_after_this_boxs_snapshot_is_one_restic_run(tmp_path):
    """The manifest a snapshot job wrote is the snapshot's: restoring a study after it reads none from the
    repository (a restic run, 0.7 s of key derivation, each) - only the study's files are fetched."""
    s = snap(1, 1)
    offsite = repo_with({"1.2.3": [b"one", b"two"], "1.2.4": [b"other"]}, [s], name="rest:restore-one-run")
    recorded = {"1.2.3": 2, "1.2.4": 1}  # what the catalog recorded for the snapshot

    def known(_: SnapshotInfo, study: str) -> int | None:
        return recorded.get(study)

    written = tmp_path / "manifest.jsonl"
    written.write_bytes(offsite.dump(s.id, "/data/pacs-backup/manifest.jsonl"))
    dumps: list[str] = []
    dumped = offsite.dump
    offsite.dump = lambda snapshot, path: dumps.append(path) or dumped(snapshot, path)  # type: ignore[method-assign]
    reg = registry(tmp_path, offsite=offsite, usb=repo_with({}, []), b2=repo_with({}, []))
    reg.warm_in_background = lambda: None  # type: ignore[method-assign]
    reg.after_snapshot(TakenSnapshot(offsite.repository, s.id, "/data", written))
    orthanc = StoringOrthanc()
    entries = reg.manifests.entries
    report = restore_from_snapshot(offsite, orthanc, ["1.2.3"], known=known, manifest_of=entries)  # type: ignore[arg-type]
    assert report.ok and report.verified == 2
    assert sorted(orthanc.stored.values()) == [b"one", b"two"]
    assert dumps == [] and offsite.restores == [["/data/ab/cd/1.2.3.1.0", "/data/ab/cd/1.2.3.1.1"]]
    # A snapshot whose manifest nobody wrote here is read from the repository, once.
    reg.manifests = type(reg.manifests)()
    entries = reg.manifests.entries
    report = restore_from_snapshot(offsite, StoringOrthanc(), ["1.2.4"], known=known, manifest_of=entries)  # type: ignore[arg-type]
    assert report.ok and len(dumps) == 1


def test_copy_source_snapshot_never_follows_a_manifest_path_out_of_the_restore_or_a_bad_checksum(tmp_path):
    """A manifest that lies (a shared offsite repository written by someone else): a path leaving the restore is
    not moved into the view cache, and a checksum that is no sha256 never names a file; both read as damaged."""
    s = snap(1, 1)
    offsite = repo_with({"1.2.3": [b"one"]}, [s])
    bad = dict(offsite.entries[s.id][0])
    escape = {**bad, "sop_uid": "1.2.3.9", "path": "../../outside.dcm", "sha256": sha(b"outside")}
    odd = {**bad, "sop_uid": "1.2.3.8", "sha256": "../" + "0" * 61}
    offsite.entries[s.id] += [escape, odd]
    offsite.snaps[s]["../../outside.dcm"] = b"outside"
    reg = registry(tmp_path, offsite=offsite, usb=repo_with({}, []), b2=repo_with({}, []))
    source = reg.open_source("offsite")
    by_sop = {i["sop_uid"]: i for i in source.instances("1.2.3")}
    assert source.read(by_sop["1.2.3.1.0"]) == b"one"
    for sop in ("1.2.3.9", "1.2.3.8"):
        with pytest.raises(CopyDamaged):
            source.read(by_sop[sop])
    cache = tmp_path / "view-cache"
    assert all(p.resolve().is_relative_to(cache.resolve()) for p in cache.rglob("*.dcm"))


# --- the bucket ----------------------------------------------------------------------------------------
class FakeStore:
    bucket = "pacs"

    def __init__(self, objects: dict[str, tuple[bytes, str | None]]) -> None:
        self.objects = objects

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def get_with_sha(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        return self.objects[key]


def test_copy_source_bucket_refuses_an_object_that_does_not_match_its_sha256():
    good, key = b"the image", "dicom/1.2.3/1.2.3.1/1.2.3.1.1.dcm"
    store = FakeStore({key: (good, sha(good))})
    source = BucketSource(store)  # type: ignore[arg-type]
    (inst,) = source.instances("1.2.3")
    assert inst["sop_uid"] == "1.2.3.1.1" and source.read(inst) == good
    store.objects[key] = (b"ransomware was here", sha(good))
    with pytest.raises(CopyDamaged, match="does not match the checksum"):
        source.read(inst)
    store.objects[key] = (b"no metadata at all", None)
    with pytest.raises(CopyDamaged, match="no checksum"):
        source.read(inst)
    with pytest.raises(NotFound):
        source.instances("1.2.4")


# --- the routes ----------------------------------------------------------------------------------------
class CopiesService:
    access = Access(roles={"desk": Role.STAFF})
    config_error = None

    def __init__(self, copies: SourceRegistry) -> None:
        self.copies = copies


def get(svc: Any, path: str, **query: str) -> tuple[int, Any]:
    auth = "Basic " + base64.b64encode(b"desk:pw").decode()
    return dispatch(svc, "GET", path, query, b"", {"host": "pacs:8042", "authorization": auth})


def test_copy_source_routes_answer_bytes_409_503_404_and_400(tmp_path):
    s = snap(1, 1)
    offsite = repo_with({"1.2.3": [b"one"]}, [s])
    reg = registry(tmp_path, plugged=False, offsite=offsite, usb=repo_with({}, []), b2=repo_with({}, []))
    svc = CopiesService(reg)
    code, listed = get(svc, "copies", study="1.2.3")
    assert code == 200 and "offsite" in [d["name"] for d in listed]
    code, studies = get(svc, "copies/offsite/studies", PatientID="P1", StudyDate="20261130-20261201")
    assert code == 200 and [x["study_uid"] for x in studies] == ["1.2.3"]
    code, instances = get(svc, "copies/offsite/studies/1.2.3")
    assert code == 200 and len(instances) == 1
    code, answer = get(svc, f"copies/offsite/studies/1.2.3/instances/{instances[0]['sop_uid']}")
    assert code == 200 and isinstance(answer, Binary) and answer.data == b"one" and answer.mime == "application/dicom"

    # the study is in the view cache now: a file changed there is caught when read
    for f in (tmp_path / "view-cache").rglob("*.dcm"):
        f.write_bytes(b"tampered")
    code, answer = get(svc, f"copies/offsite/studies/1.2.3/instances/{instances[0]['sop_uid']}")
    assert code == 409 and "does not match the checksum" in answer["error"]
    code, answer = get(svc, "copies/drive-usb/studies/1.2.3")
    assert code == 503 and answer["error"] == "The backup drive 'usb' is not plugged in."
    assert get(svc, "copies/nowhere/studies")[0] == 404
    assert get(svc, "copies/offsite/studies/1.2.3/instances/9.9")[0] == 404
    assert get(svc, "copies/offsite/studies/..%2Fetc")[0] == 400
    assert get(svc, "copies/offsite/studies", StudyDate="2026-12-01")[0] == 400


def test_copy_source_search_arguments_and_matching():
    m = study_match({"StudyDate": "20261201", "ModalitiesInStudy": "cr", "PatientName": "SMITH*", "offset": "1"})
    assert (m.date_from, m.date_to, m.modality, m.offset) == ("20261201", "20261201", "CR", 1)
    assert study_match({"StudyDate": "-20261201"}).date_from == ""
    for bad in ({"StudyDate": "20261202-20261201"}, {"ModalitiesInStudy": "C R"}, {"offset": "x"}):
        with pytest.raises(BadRequest):
            study_match(bad)
    assert wildcard("smith^b*", "Smith^Bella") and not wildcard("jones*", "Smith^Bella")
    assert wildcard("a[1]", "A[1]")  # brackets are not a character class in DICOM
    entries = [entry("1.2.3", "a", b"1", study_date="20261101"), entry("1.2.4", "b", b"2", modality="US")]
    studies = summarize(entries)
    assert [s["study_uid"] for s in select(studies, StudyMatch())] == ["1.2.4", "1.2.3"]  # newest first
    assert [s["study_uid"] for s in select(studies, StudyMatch(modality="CR"))] == ["1.2.3"]
    assert select(studies, StudyMatch(limit=1, offset=1))[0]["study_uid"] == "1.2.3"


def test_copy_source_a_missing_object_is_a_typed_error_not_a_parsed_message():
    """The store's NoSuchKey is its own error type (a missing copy, not an outage), so a source answers 404
    without reading the sentence back."""
    from minio.error import S3Error

    from pacs_backup.clients.store_errors import ObjectMissing, store_error
    from pacs_backup.contracts.errors import StoreUnavailable

    for code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
        err = store_error(S3Error(None, code, "gone", "/b/k", "r", "h"), "read dicom/1.2/3.dcm")
        assert isinstance(err, ObjectMissing) and "no such object" in str(err)
    assert not isinstance(store_error(OSError("refused"), "read k"), ObjectMissing)
    assert isinstance(store_error(OSError("refused"), "read k"), StoreUnavailable)
