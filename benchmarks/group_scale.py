#!/usr/bin/env python3
"""`make bench GROUP=1`: the group catalog (PostgreSQL) at the size of a large group of clinics.

Fills a real PostgreSQL (Debian's, a cluster of its own with fsync on) through COPY with a synthetic catalog of
GROUP_SCALE_INSTANCES instances (10 million by default) across 50 clinics: about 5 instances per series and 3
series per study, patients with one to three studies, names, owners, species, breeds, ids and dates as clinics
write them. Then measures, through the group service's own code (pacs_dashboard.group):

- ``search_p99_ms``: 200 varied searches (names in any order and form, owners, species and breeds, ids, a
  pasted UID, dates, a modality, one clinic), after 20 warm-up searches of other words;
- ``status_p99_ms``: the group's status (every clinic's last heartbeat, quiet flag, totals), 200 times;
- ``rebuild_s_per_million``: one clinic's rows removed, then written again by the rebuild's ingest path from a
  synthetic listing and manifest (no S3: the catalog's work per object, at this size);
- ``ingest_instances_per_s``: catalog updates as clinics send them, batches of 500 through ingest.py.

Writes benchmarks/results/group_scale.json (untracked). Goals: search p99 <= 200 ms, status p99 <= 100 ms.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "dev"), str(ROOT), str(ROOT / "plugins"), str(ROOT / "dashboard")]
from pacs_backup.state.manifest import ManifestEntry  # noqa: E402
from pacs_backup.state.search import display_name, study_search_text  # noqa: E402
from pacs_dashboard.group.catalog import Catalog  # noqa: E402
from pacs_dashboard.group.heartbeats import group_status  # noqa: E402
from pacs_dashboard.group.ingest import CatalogEntry, ingest  # noqa: E402
from pacs_dashboard.group.reconcile import rebuild_clinic  # noqa: E402
from pacs_dashboard.group.search import search  # noqa: E402
from pacs_dashboard.group.store import Listed  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "benchmarks" / "results")
INSTANCES = int(os.environ.get("GROUP_SCALE_INSTANCES", "10000000"))
CLINICS = 50
PER_SERIES, SERIES = 5, 3
FAMILY = [
    "Smith",
    "Müller",
    "O'Brien",
    "García",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Jones",
    "Yamada",
    "Johansson",
    "Novák",
    "Fischer",
    "Schneider",
    "Martínez",
    "López",
    "Bianchi",
    "Ferrari",
    "Moreau",
    "Lefèvre",
    "Jensen",
    "Nielsen",
    "Andersson",
    "Virtanen",
    "Horvat",
    "Papadopoulos",
    "Silva",
    "Santos",
    "Costa",
    "Pereira",
    "Kim",
    "Lee",
    "Park",
    "Chen",
    "Wang",
    "Tanaka",
    "Sato",
    "Brown",
    "Wilson",
    "Taylor",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Harris",
    "Clarke",
    "Jackson",
    "Murphy",
    "Kelly",
    "Byrne",
    "Walsh",
]
PETS = [
    "Bella",
    "Rex",
    "Luna",
    "Max",
    "Milo",
    "Coco",
    "Nala",
    "Simba",
    "Zoë",
    "Charlie",
    "Daisy",
    "Rocky",
    "Lola",
    "Oscar",
    "Ruby",
    "Teddy",
    "Molly",
    "Buddy",
    "Lucy",
    "Leo",
    "Chloé",
    "Jack",
    "Sadie",
    "Toby",
    "Maggie",
    "Bailey",
    "Stella",
    "Duke",
    "Penny",
    "Loki",
    "Ginger",
    "Pepper",
    "Shadow",
    "Misty",
    "Tigger",
    "Felix",
    "Oreo",
    "Smokey",
    "Biscuit",
    "Hazel",
    "Juniper",
    "Mochi",
    "Sushi",
    "Tofu",
    "Kiwi",
    "Mango",
    "Pippa",
    "Willow",
    "Ziggy",
    "Björn",
    "Frida",
    "Gigi",
    "Hugo",
]
OWNERS = [
    "Hans",
    "Anna",
    "José",
    "Émile",
    "Siobhan",
    "Lan",
    "Yuki",
    "Marta",
    "Piotr",
    "Giulia",
    "Sofia",
    "Lars",
    "Ingrid",
    "Chloé",
    "Tomás",
    "Kenji",
    "Aisha",
]
SPECIES: dict[str, list[str]] = {
    "Canine": ["Labrador", "Beagle", "Terrier", "German Shepherd", "Poodle", "Dachshund", "Mixed", "Border Collie"],
    "Feline": ["Siamese", "Maine Coon", "Persian", "Domestic Shorthair", "Bengal", "Ragdoll"],
    "Equine": ["Arabian", "Thoroughbred", "Haflinger", "Shetland Pony"],
    "Lapine": ["Lop", "Rex", "Dutch"],
    "Avian": ["Budgerigar", "Cockatiel", "African Grey"],
    "Reptile": ["Bearded Dragon", "Leopard Gecko"],
}
SPECIES_WEIGHTS = [55, 33, 5, 4, 2, 1]
MODALITIES = ["DX", "DX", "DX", "DX", "DX", "DX", "CR", "US", "US", "CT", "MR", "XA"]
PARTS = [
    "Thorax",
    "Abdomen",
    "Hip",
    "Knee",
    "Elbow",
    "Spine",
    "Skull",
    "Dental",
    "Fetlock",
    "Pelvis",
    "Shoulder",
    "Carpus",
    "Tarsus",
    "Chest",
]
START = 1_420_070_400  # 2015-01-01: ten years of studies


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def log(msg: str) -> None:
    print(f"[group-scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def clinic_id(c: int) -> str:
    return f"clinic-{c:02d}"


class Study:
    """One synthetic study and how its instance rows are written."""

    __slots__ = ("accession", "breed", "date", "desc", "modality", "name", "owner", "pid", "species", "uid")

    def __init__(self, c: int, s: int, rng: random.Random) -> None:
        patient = s // 2 if rng.random() < 0.5 else s  # about half the patients come back for a second study
        prng = random.Random(c * 10_000_000 + patient)  # noqa: S311 - synthetic data
        self.name = f"{prng.choice(FAMILY)}^{prng.choice(PETS)}"
        self.owner = f"{prng.choice(OWNERS)} {self.name.split('^')[0]}"
        self.species = prng.choices(list(SPECIES), SPECIES_WEIGHTS)[0]
        self.breed = prng.choice(SPECIES[self.species])
        self.pid = f"P-{c:02d}{patient:06d}"
        self.accession = f"A{c:02d}-{s:07d}"
        self.date = time.strftime("%Y%m%d", time.gmtime(START + rng.randrange(0, 3650 * 86400)))
        self.modality = rng.choice(MODALITIES)
        self.desc = f"{rng.choice(PARTS)} {rng.choice(['', 'follow-up', 'pre-op', 'post-op', 'lateral'])}".strip()
        self.uid = f"1.2.826.0.1.3680043.10.{c}.{s:07d}"


def _instances(c: int, study: Study, verified: float) -> Iterator[str]:
    clinic = clinic_id(c)
    for se in range(SERIES):
        series = f"{study.uid}.{se + 1}"
        for n in range(PER_SERIES):
            sop = f"{series}.{n + 1}"
            key = f"{clinic}/dicom/{study.uid}/{series}/{sop}.dcm"
            sha = f"{hash((c, sop)) & (2**64 - 1):016x}" * 4
            yield "\t".join(
                (
                    clinic,
                    study.uid,
                    series,
                    sop,
                    key,
                    sha,
                    str(400_000 + n * 1000),
                    study.modality,
                    study.pid,
                    study.name,
                    study.owner,
                    study.species,
                    study.breed,
                    study.accession,
                    study.date,
                    study.desc,
                    '["bucket","offsite","group"]',
                    _iso(verified),
                )
            )


def _study_row(c: int, study: Study, verified: float) -> str:
    text = study_search_text(
        study.name, study.owner, study.species, study.breed, study.pid, study.accession, study.desc
    ).replace("\\", "\\\\")
    n = SERIES * PER_SERIES
    size = sum(400_000 + i * 1000 for i in range(PER_SERIES)) * SERIES
    fields = (clinic_id(c), study.uid, study.pid, study.name, display_name(study.name), study.owner, study.species)
    fields += (study.breed, study.accession, study.date, study.desc, study.modality, str(SERIES), str(n), str(size))
    fields += (text, f'{{"bucket": {n}, "offsite": {n}, "group": {n}}}', _iso(verified))
    return "\t".join(fields)


INSTANCE_COPY = (
    "COPY instances (clinic, study_uid, series_uid, sop_uid, key, sha256, size, modality, patient_id, patient_name, "
    "owner, species, breed, accession, study_date, description, copies, verified_at) FROM STDIN"
)
STUDY_COPY = (
    "COPY studies (clinic, study_uid, patient_id, patient_name, display_name, owner, species, breed, accession, "
    "study_date, description, modalities, series, instances, size, search_text, copies, last_verified_at) FROM STDIN"
)


def fill(catalog: Catalog, studies_per_clinic: int) -> list[list[Study]]:
    """COPY the synthetic catalog in, clinic by clinic; returns the studies made."""
    made: list[list[Study]] = []
    with catalog.connection() as conn:
        conn.execute("SET synchronous_commit = off")  # the fill is not measured
        conn.execute("SET TIME ZONE 'UTC'")
        for c in range(CLINICS):
            rng = random.Random(c)  # noqa: S311 - synthetic data
            studies = [Study(c, s, rng) for s in range(studies_per_clinic)]
            verified = 1_790_000_000.0 + c
            with conn.transaction():
                conn.execute("INSERT INTO clinics (id, label) VALUES (%s, %s)", (clinic_id(c), f"Clinic {c}"))
                with conn.cursor().copy(INSTANCE_COPY) as copy:
                    buf: list[str] = []
                    for st in studies:
                        buf.extend(_instances(c, st, verified))
                        if len(buf) >= 20_000:
                            copy.write("\n".join(buf) + "\n")
                            buf = []
                    if buf:
                        copy.write("\n".join(buf) + "\n")
                with conn.cursor().copy(STUDY_COPY) as copy:
                    copy.write("\n".join(_study_row(c, st, verified) for st in studies) + "\n")
                n = len(studies) * SERIES * PER_SERIES
                conn.execute(
                    "UPDATE clinics SET studies = %s, instances = %s, size = (SELECT COALESCE(SUM(size), 0) "
                    "FROM studies WHERE clinic = %s), last_heartbeat_at = now() - %s * interval '1 minute', "
                    "last_status = %s WHERE id = %s",
                    (
                        len(studies),
                        n,
                        clinic_id(c),
                        c % 15,
                        json.dumps({"outbox_depth": c, "replicated": n}),
                        clinic_id(c),
                    ),
                )
            made.append(studies)
            if c % 10 == 9:
                log(f"{c + 1} clinics filled")
    return made


def _queries(made: list[list[Study]], rng: random.Random) -> list[tuple[str, str, str, str, str]]:
    """Varied searches: (text, from, to, modality, clinic)."""
    out: list[tuple[str, str, str, str, str]] = []
    for i in range(220):
        st = rng.choice(rng.choice(made))
        family, pet = st.name.split("^")
        kind = i % 14
        if kind == 0:
            out.append((f"{pet} {family}", "", "", "", ""))
        elif kind == 1:
            out.append((f"{family.lower()} {pet.lower()}", "", "", "", ""))
        elif kind == 2:
            out.append((st.owner, "", "", "", ""))
        elif kind == 3:
            out.append((f"{st.species} {st.breed}", "", "", "", ""))
        elif kind == 4:
            out.append((st.pid, "", "", "", ""))
        elif kind == 5:
            out.append((st.accession.lower(), "", "", "", ""))
        elif kind == 6:
            out.append((st.uid, "", "", "", ""))
        elif kind == 7:
            out.append(("", st.date, st.date, "", ""))
        elif kind == 8:
            out.append((pet, f"{st.date[:4]}-01-01", f"{st.date[:4]}-12-31", "", ""))
        elif kind == 9:
            out.append((family[:4], "", "", st.modality, ""))
        elif kind == 10:
            out.append((f"{pet} {st.species}", "", "", "", f"clinic-{st.pid[2:4]}"))
        elif kind == 11:
            out.append((family.replace("ü", "ue").replace("é", "e"), "", "", "", ""))
        elif kind == 12:
            out.append((st.desc.split()[0], "", "", "", ""))
        else:
            out.append((f"nobody{rng.randrange(10**6)}", "", "", "", ""))
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def measure_search(catalog: Catalog, made: list[list[Study]]) -> dict[str, Any]:
    queries = _queries(made, random.Random(7))  # noqa: S311
    for text, first, last, modality, clinic in queries[200:]:  # warm-up: the first searches after a start
        search(catalog, text, first, last, modality, clinic)
    times, found = [], []
    for text, first, last, modality, clinic in queries[:200]:
        t = time.perf_counter()
        hits = search(catalog, text, first, last, modality, clinic)
        times.append((time.perf_counter() - t) * 1000)
        found.append(len(hits))
    slowest = sorted(zip(times, queries[:200], strict=True), reverse=True)[:3]
    return {
        "search_p50_ms": _p(times, 0.5),
        "search_p99_ms": _p(times, 0.99),
        "search_max_ms": round(max(times), 2),
        "searches_with_results": sum(1 for f in found if f),
        "slowest_searches": [{"ms": round(ms, 1), "query": list(q)} for ms, q in slowest],
    }


def measure_status(catalog: Catalog) -> dict[str, Any]:
    times = []
    for _ in range(200):
        t = time.perf_counter()
        clinics = group_status(catalog, 10)
        times.append((time.perf_counter() - t) * 1000)
    return {"status_p50_ms": _p(times, 0.5), "status_p99_ms": _p(times, 0.99), "status_clinics": len(clinics)}


def _entries(c: int, studies: list[Study]) -> list[CatalogEntry]:
    out = []
    for st in studies:
        for line in _instances(c, st, 1_790_000_000.0):
            f = line.split("\t")
            out.append(
                CatalogEntry(
                    orthanc_id="",
                    study_uid=f[1],
                    series_uid=f[2],
                    sop_uid=f[3],
                    key=f[4],
                    sha256=f[5],
                    size=int(f[6]),
                    modality=f[7],
                    patient_id=f[8],
                    patient_name=f[9],
                    owner=f[10],
                    species=f[11],
                    breed=f[12],
                    accession=f[13],
                    study_date=f[14],
                    description=f[15],
                    path="",
                    verified_at=1_790_000_000.0,
                    copies=["bucket", "group"],
                )
            )
    return out


def measure_rebuild(catalog: Catalog, made: list[list[Study]]) -> dict[str, Any]:
    """One clinic emptied, then filled again by the rebuild's path from a synthetic listing and manifest."""
    c = CLINICS - 1
    entries = _entries(c, made[c])
    with catalog.connection() as conn, conn.transaction():
        conn.execute("DELETE FROM instances WHERE clinic = %s", (clinic_id(c),))
        conn.execute("DELETE FROM studies WHERE clinic = %s", (clinic_id(c),))
        conn.execute("UPDATE clinics SET studies = 0, instances = 0, size = 0 WHERE id = %s", (clinic_id(c),))
    listing = [Listed(e["key"], e["size"], None) for e in entries]
    manifest = [
        cast(ManifestEntry, {k: v for k, v in e.items() if k not in ("verified_at", "copies")}) for e in entries
    ]
    t = time.perf_counter()
    report = rebuild_clinic(catalog, clinic_id(c), listing, manifest, lambda o: None)
    seconds = time.perf_counter() - t
    if report.added != len(entries):
        raise RuntimeError(f"the rebuild wrote {report.added} of {len(entries)} rows")
    return {
        "rebuild_objects": len(entries),
        "rebuild_s": round(seconds, 2),
        "rebuild_s_per_million": round(seconds * 1_000_000 / len(entries), 1),
        "rebuild_objects_per_s": round(len(entries) / seconds),
    }


def measure_ingest(catalog: Catalog, made: list[list[Study]]) -> dict[str, Any]:
    """New studies of a few clinics arriving as the clinics' feeds send them (batches of 500)."""
    rng = random.Random(11)  # noqa: S311
    batches: list[tuple[str, list[CatalogEntry]]] = []
    for b in range(60):
        c = b % 6
        studies = [Study(c, len(made[c]) + b * 40 + k, rng) for k in range(34)]  # 510 instances
        batches.append((clinic_id(c), _entries(c, studies)[:500]))
    t = time.perf_counter()
    total = sum(ingest(catalog, clinic, entries) for clinic, entries in batches)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    again = sum(ingest(catalog, clinic, entries) for clinic, entries in batches[:20])  # a feed's retries
    again_s = time.perf_counter() - t
    return {
        "ingest_instances": total,
        "ingest_batch": 500,
        "ingest_instances_per_s": round(total / seconds),
        "ingest_batch_mean_ms": round(seconds / len(batches) * 1000, 1),
        "ingest_repeat_instances_per_s": round(again / again_s),
    }


def main() -> int:
    studies_per_clinic = max(1, INSTANCES // (CLINICS * SERIES * PER_SERIES))
    total = studies_per_clinic * CLINICS * SERIES * PER_SERIES
    settings = {
        "shared_buffers": "2GB",
        "maintenance_work_mem": "512MB",
        "work_mem": "32MB",
        "max_wal_size": "16GB",
        "checkpoint_timeout": "30min",
        "effective_cache_size": "8GB",
        "random_page_cost": "1.1",
    }
    started = time.monotonic()
    with PostgresServer(durable=True, settings=settings) as server:
        catalog = Catalog(server.create_database(), keep=2)
        log(f"filling {total:,} instances in {CLINICS} clinics ({studies_per_clinic:,} studies each) by COPY")
        t = time.monotonic()
        made = fill(catalog, studies_per_clinic)
        with catalog.connection() as conn:
            conn.execute("VACUUM ANALYZE")
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            studies = conn.execute("SELECT COUNT(*) FROM studies").fetchone()
        fill_s = time.monotonic() - t
        log(f"filled in {fill_s:.0f} s; database {int(size[0]) / 2**30:.1f} GiB; measuring")  # type: ignore[index]
        result: dict[str, Any] = {
            "instances": total,
            "clinics": CLINICS,
            "studies": int(studies[0]),  # type: ignore[index]
            "fill_s": round(fill_s),
            "database_gib": round(int(size[0]) / 2**30, 2),  # type: ignore[index]
            "postgresql": server.bin.parent.name,
            "cpus": os.cpu_count(),
        }
        result |= measure_search(catalog, made)
        log(f"search p50 {result['search_p50_ms']} ms, p99 {result['search_p99_ms']} ms")
        result |= measure_status(catalog)
        log(f"status p99 {result['status_p99_ms']} ms")
        result |= measure_ingest(catalog, made)
        log(f"ingest {result['ingest_instances_per_s']} instances/s")
        result |= measure_rebuild(catalog, made)
        log(f"rebuild {result['rebuild_s_per_million']} s per million objects")
        catalog.close()
    result["goals"] = {"search_p99_ms": 200, "status_p99_ms": 100}
    result["goals_met"] = result["search_p99_ms"] <= 200 and result["status_p99_ms"] <= 100
    result["total_s"] = round(time.monotonic() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "group_scale.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {RESULTS / 'group_scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
