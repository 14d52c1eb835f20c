from pacs_backup.contracts.keys import instance_key, safe_component, study_prefix


def test_instance_key_uses_uid_layout():
    assert instance_key("1.2.3", "1.2.3.4", "1.2.3.4.5") == "dicom/1.2.3/1.2.3.4/1.2.3.4.5.dcm"


def test_instance_key_prefix_per_site():
    assert instance_key("1.2", "1.3", "1.4", prefix="/site-a/") == "site-a/dicom/1.2/1.3/1.4.dcm"
    assert study_prefix("1.2", "site-a") == "site-a/dicom/1.2/"


def test_instance_key_variant_for_uid_collisions():
    key = instance_key("1.2", "1.3", "1.4", variant="0a1b-2c3d")
    assert key == "dicom/1.2/1.3/1.4.0a1b-2c3d.dcm"


def test_safe_component_never_escapes_layout():
    for bad in ["../../etc/passwd", "..", ".", "a/b", "a\\b", "", "x" * 200, "Müller^Hans", "1.2\x00.3", " 1.2"]:
        out = safe_component(bad)
        assert "/" not in out and "\\" not in out and ".." not in out
        assert out.startswith("h-") and len(out) == 42


def test_safe_component_is_stable_and_distinct():
    assert safe_component("../a") == safe_component("../a")
    assert safe_component("../a") != safe_component("../b")


def test_escaped_form_cannot_be_forged():
    # A study whose UID is literally the digest of another, unsafe UID must not share its folder.
    unsafe = "../other-patient"
    forged = safe_component(unsafe)
    assert safe_component(forged) != forged
    assert study_prefix(forged) != study_prefix(unsafe)
