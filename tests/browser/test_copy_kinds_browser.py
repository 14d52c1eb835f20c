"""Each kind of copy has its own light on the health page, in a real browser: the bucket (MinIO), an offsite
rest-server, a USB drive target whose drive is not plugged in, cloud storage through rclone (its
configuration pasted on the settings page) and a cloud PACS (a second Orthanc with DICOMweb)."""

from __future__ import annotations

from playwright.sync_api import expect, sync_playwright

from tests.support.browser import ARGS, CHROMIUM, SHOTS, log_in
from tests.support.common import wait_until
from tests.support.pacs import fill


def test_browser_health_page_shows_one_light_per_kind_of_copy(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path, rclone_folder
):
    cloud_pacs = orthanc_factory({}, plugin=False, name="cloud-pacs")
    mount = tmp_path / "media" / "backup-drive"  # no drive plugged in there
    mount.mkdir(parents=True)
    cloud_folder = rclone_folder / "cloud-drive"  # rclone runs as its own user: a folder that user may write
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "BACKUP_EXTRA_TARGETS": "usb,cloud",
            "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
            "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
            "CLOUD_RESTIC_REPOSITORY": f"rclone:clinicdrive:{cloud_folder}",
            "CLOUD_RESTIC_PASSWORD_FILE": str(restic_password_file),
            "CLOUD_PACS_URL": cloud_pacs.url + "/dicom-web",
            "CLOUD_PACS_USERNAME": cloud_pacs.settings.username,
            "CLOUD_PACS_PASSWORD": cloud_pacs.settings.password,
            # Every copy here runs on this machine: each stands in for one elsewhere (the page says so).
            "BACKUP_TREAT_AS_OFFSITE": "offsite,cloud,cloud-pacs",
        }
    )
    fill(o, studies=2, per_study=3)
    o.wait_replicated(6)
    d = dashboard_factory(o)
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        log_in(page, d)

        # The clinic pastes its cloud storage configuration (a `local` remote stands in for Google Drive).
        page.click("text=Settings")
        page.fill("textarea[name=rclone_config]", "[clinicdrive]\ntype = local\n")
        page.click("button:has-text('Save the cloud storage configuration')")
        expect(page.locator(".flash")).to_contain_text("1 remote(s), clinicdrive (local)")
        expect(page.locator("#rclone-remotes")).to_have_text("Configured remotes: clinicdrive (local). Used by: cloud.")

        # A snapshot and a restore test of every copy (the drive is not plugged in: it is skipped).
        runs = o.run_job("snapshots") + o.run_job("drills")
        assert {r["target"] for r in runs} == {"offsite", "cloud", "minio"}, runs
        assert all(r["state"] == "ok" for r in runs), runs
        wait_until(lambda: o.status()["cloud_pacs"]["verified"] == 6, 60, "6 images verified in the cloud PACS")

        page.click("text=Health")
        lights = page.locator("#lights")
        for key, label, state, value in (
            ("store", "Local backup copy", "green", "reachable"),
            ("offsite-offsite", "Offsite copy", "green", "newest"),
            ("offsite-cloud", "Cloud storage copy", "green", "newest"),
            ("cloud-pacs", "Cloud PACS copy", "green", "6 images sent and checked"),
            ("drive-usb", "Backup drive (usb)", "amber", "no backup drive plugged in"),
        ):
            light = lights.locator(f".light[data-key='{key}']")
            expect(light).to_have_count(1)
            expect(light).to_have_class(f"light {state}")
            expect(light.locator("h2")).to_have_text(label)
            expect(light.locator(".value")).to_contain_text(value)
        for key in ("offsite-offsite", "offsite-cloud", "cloud-pacs"):
            expect(lights.locator(f".light[data-key='{key}'] .advice")).to_contain_text("treated as offsite by setting")
        expect(lights.locator(".light[data-key='offsite']")).to_have_count(0)  # a copy away from the box: counted
        drive = lights.locator(".light[data-key='drive-usb'] .advice")
        expect(drive).to_contain_text("Plug in the backup drive.")
        expect(drive).to_contain_text("No drive has had a snapshot yet.")
        page.screenshot(path=str(SHOTS / "health-copy-kinds.png"), full_page=True)

        page.click("text=Backup drives")
        expect(page.locator("h2").first).to_have_text("Backup drive (usb)")
        expect(page.locator("body")).to_contain_text("Plug in the backup drive.")
        page.screenshot(path=str(SHOTS / "backup-drives.png"), full_page=True)
        browser.close()
