"""The technician commands' arguments, exit codes and what they print, with a fake PACS (no programs run)."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from pacs_backup.cli import env as cli_env
from pacs_backup.cli import jobs as cli_jobs
from pacs_backup.cli import main as cli
from pacs_backup.cli import restore as cli_restore
from pacs_backup.cli.exits import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from pacs_backup.cli.summary import detail_lines
from pacs_backup.cli.text import Progress, duration, size
from pacs_backup.clients.orthanc_http import RequestRefused
from pacs_backup.restore.uploads import RestoreReport


def run_doc(run_id: int, state: str, kind: str = "snapshot", target: str = "offsite", **kw: Any) -> dict[str, Any]:
    doc = {
        "id": run_id,
        "target": target,
        "kind": kind,
        "state": state,
        "queued_at": 1000.0,
        "started_at": None if state == "queued" else 1001.0,
        "finished_at": 1004.7 if state in ("ok", "failed") else None,
        "duration_s": 3.7 if state in ("ok", "failed") else None,
        "summary": {},
        "error": None,
    }
    return {**doc, **kw}


class FakePacs:
    """Answers the plugin's job routes from a script of run states (one per poll)."""

    url = "http://pacs.test"

    def __init__(self, states: list[dict[str, Any]] | None = None, targets: tuple[str, ...] = ("offsite", "minio")):
        self.states = list(states or [])
        self.targets = targets
        self.polls = 0

    def post_json(self, uri: str, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("target") and payload["target"] not in self.targets:
            raise RequestRefused(400, "Orthanc refused (HTTP 400)", f"Unknown target {payload['target']!r}.")
        if uri == "/backup/drives" and payload["target"] != "usb":
            raise RequestRefused(400, "Orthanc refused (HTTP 400)", f"{payload['target']!r} is not a drive target.")
        if uri == "/backup/drives" and len(payload.get("label", "")) > 40:
            raise RequestRefused(400, "Orthanc refused (HTTP 400)", "The label is longer than 40 characters.")
        return {"runs": [10]}

    def get_json(self, uri: str) -> Any:
        if uri == "/backup/status":
            return {"offsite": {name: {"drive": {"connected": True}} if name == "usb" else {} for name in self.targets}}
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        return state


def run_script(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv, script=True)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pacs(monkeypatch: pytest.MonkeyPatch) -> FakePacs:
    fake = FakePacs()
    monkeypatch.setattr(cli_env, "orthanc", lambda: fake)
    monkeypatch.setattr(cli_jobs.time, "sleep", lambda s: None)
    return fake


@pytest.mark.parametrize("name", sorted(cli.BY_NAME))
def test_every_option_of_every_command_has_help_and_the_exit_codes(name, capsys):
    code, out, _ = run_script([name, "--help"], capsys)
    assert code == EXIT_OK and out.startswith(f"usage: {name} ")
    parser = cli._parser_of(cli.BY_NAME[name], argparse.ArgumentParser)
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, f"{name}: {action.option_strings or action.dest}"
    for code_line in ("  0  ", "  1  ", "  2  bad arguments", "  3  a service", "  4  nothing matched"):
        assert code_line in out, code_line


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["restore-study", "--from", "minio", "--bogus"], "unrecognized arguments: --bogus"),
        (["restore-study", "not-a-uid", "--from", "minio"], "'not-a-uid' is not a StudyInstanceUID"),
        (["snapshot-now", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["restore-study", "1.2.3", "--from", "minio", "--as-of", "May"], "'May' is not a date"),
        (["disaster-recovery"], "the following arguments are required: --from"),
    ],
)
def test_bad_arguments_give_the_usage_line_one_sentence_and_exit_2(argv, sentence, capsys):
    code, out, err = run_script(argv, capsys)
    lines = err.strip().splitlines()
    assert code == EXIT_USAGE and out == ""
    assert (
        lines[0].startswith(f"usage: {argv[0]} ")
        and lines[-1] == f"{argv[0]}: error: " + lines[-1].split("error: ", 1)[1]
    )
    assert sentence in lines[-1] and "Traceback" not in err


def test_the_installed_command_names_the_subcommand_in_its_usage_for_an_unknown_option(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["quarantine", "--bogus"])
    assert exc.value.code == EXIT_USAGE
    assert "usage: pacs-backup quarantine" in capsys.readouterr().err


def test_an_unknown_target_exits_2_naming_the_targets(pacs, capsys):
    code, out, err = run_script(["snapshot-now", "--target", "nope"], capsys)
    assert code == EXIT_USAGE and out == ""
    assert err.strip() == "error: No target named 'nope'; the targets are: offsite."
    code, _, err = run_script(["verify-backups", "--target", "nope"], capsys)
    assert code == EXIT_USAGE and "the targets are: offsite, minio." in err


def test_prepare_drive_names_the_drive_targets_or_passes_on_the_plugins_sentence(pacs, capsys):
    pacs.targets = ("offsite", "usb", "minio")
    code, _, err = run_script(["prepare-drive", "--target", "offsite"], capsys)
    assert code == EXIT_USAGE and err.strip() == "error: No drive target named 'offsite'; the drive targets are: usb."
    code, _, err = run_script(["prepare-drive", "--target", "usb", "--label", "x" * 50], capsys)
    assert code == EXIT_USAGE and err.strip() == "error: The label is longer than 40 characters."


def test_snapshot_now_says_queued_started_running_and_finished(pacs, monkeypatch, capsys):
    pacs.states = [
        run_doc(10, "queued"),  # the answer read right after queueing
        run_doc(10, "queued"),
        run_doc(10, "running"),  # a running snapshot records nothing until it ends
        run_doc(10, "running"),
        run_doc(10, "ok", summary={"snapshot_id": "70fcbc69aa", "total_files": 7, "files_new": 7, "forgot": False}),
    ]
    ticks = iter(range(0, 1000, 20))  # every poll is 20 s later: each one is worth a progress line
    monkeypatch.setattr(cli_jobs, "CLOCK", lambda: float(next(ticks)))
    code, out, _ = run_script(["snapshot-now"], capsys)
    assert code == EXIT_OK, out
    lines = out.splitlines()
    assert lines[0] == "Snapshot of offsite queued (run 10); waiting for it to start..."
    assert any("still waiting to start" in line for line in lines)
    assert any(line.startswith("Snapshot of offsite started at ") and "(run 10)" in line for line in lines)
    assert any(line.startswith("  Snapshot of offsite: running for ") for line in lines), out
    assert "Snapshot of offsite finished OK in 3.7 s (run 10)." in lines
    assert "forgot" not in out and "False" not in out and "70fcbc69" in out


def test_a_failed_run_exits_1_with_its_reason(pacs, capsys):
    pacs.states = [run_doc(10, "queued"), run_doc(10, "failed", error="The offsite repository is locked.")]
    code, out, _ = run_script(["snapshot-now"], capsys)
    assert code == EXIT_FAILED
    assert "Snapshot of offsite FAILED in 3.7 s (run 10): The offsite repository is locked." in out


def test_json_keeps_machine_output_on_stdout_and_the_commentary_on_stderr(pacs, capsys):
    pacs.states = [run_doc(10, "queued"), run_doc(10, "ok", kind="drill", target="minio")]
    code, out, err = run_script(["verify-backups", "--json"], capsys)
    assert code == EXIT_OK and '"state": "ok"' in out and out.lstrip().startswith("[")
    assert "queued (run 10)" in err and "queued" not in out.split('"state"')[0]


def test_a_drill_mismatch_is_a_table_and_advice_not_a_json_list():
    mismatch = {
        "key": "dicom/k",
        "study_uid": "1.2.3",
        "patient": "Garcia, Luna (id PID-LUNA)",
        "copy": "bucket b",
        "problem": "missing from the bucket",
        "advice": "Restore this study from the offsite copy.",
    }
    run = run_doc(
        3, "failed", kind="drill", target="minio", summary={"checked": 5, "identical": 4, "mismatches": [mismatch]}
    )
    text = "\n".join(detail_lines(run))  # type: ignore[arg-type]
    assert "5 images read back, 4 identical, 1 NOT as recorded" in text
    assert "Garcia, Luna (id PID-LUNA)" in text and "What to do: Restore this study" in text
    assert "[" not in text and "{" not in text


def test_an_unknown_study_exits_4_with_a_not_found_line(monkeypatch, capsys):
    class Store:
        bucket = "pacs-backup"

    monkeypatch.setattr(cli_env, "orthanc", lambda: FakePacs())
    monkeypatch.setattr(cli_env, "store", lambda: (Store(), ""))
    monkeypatch.setattr(cli_restore, "restore_from_bucket", lambda *a, **k: RestoreReport(source="bucket pacs-backup"))
    code, out, err = run_script(["restore-study", "1.2.3.4", "--from", "minio"], capsys)
    assert code == EXIT_NOT_FOUND
    assert err.strip() == "not found: Study 1.2.3.4 was not found in bucket pacs-backup."
    assert "0 of 0" not in out


def test_a_restore_ends_with_one_sentence_per_outcome(monkeypatch, capsys):
    monkeypatch.setattr(cli_env, "orthanc", lambda: FakePacs())
    monkeypatch.setattr(cli_env, "store", lambda: (type("S", (), {"bucket": "b"})(), ""))
    report = RestoreReport(source="bucket b", total=3, verified=2, failures=[("1.2.3/4", "the copy is damaged")])
    monkeypatch.setattr(cli_restore, "restore_from_bucket", lambda *a, **k: report)
    code, out, _ = run_script(["restore-study", "1.2.3", "--from", "minio"], capsys)
    assert code == EXIT_FAILED
    assert "2 of 3 images restored and verified" in out and "1.2.3/4  the copy is damaged" in out
    assert "INCOMPLETE" in out


def test_progress_in_a_log_writes_whole_lines_with_counts_and_elapsed_time():
    out = io.StringIO()
    t = [0.0]
    progress = Progress("restoring", out, every_s=15.0, now=lambda: t[0])
    t[0] = 5.0
    progress.update(1, 4)  # too soon after the start for a line in a log
    t[0] = 20.0
    progress.update(2, 4)
    t[0] = 21.0
    progress.update(4, 4)  # the end: always shown
    assert out.getvalue().splitlines() == [
        "restoring: 2 of 4 images (50%), 20 s",
        "restoring: 4 of 4 images (100%), 21 s",
    ]


def test_human_numbers():
    assert (size(58852), size(999), size(3_400_000_000)) == ("58.9 KB", "999 bytes", "3.4 GB")
    assert (duration(3.73), duration(75), duration(3 * 3600 + 120)) == ("3.7 s", "1 min 15 s", "3 h 2 min")
