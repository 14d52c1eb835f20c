"""DICOM_MODALITIES against a real Orthanc: only listed devices, from their listed address, may store
(issue 16.2)."""

from __future__ import annotations

import dataclasses
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import SecondaryCaptureImageStorage, StudyRootQueryRetrieveInformationModelFind, Verification

from tests.support.background import stop_later
from tests.support.dicomgen import make_instance, new_uid
from tests.support.servers import OrthancServer

pytestmark = pytest.mark.timeout(300)


def c_store(orthanc: OrthancServer, calling_aet: str) -> tuple[int | None, str]:
    """Send one new instance as ``calling_aet`` from 127.0.0.1; return the C-STORE status (None: no answer)
    and its SOP Instance UID."""
    data = make_instance(new_uid(), new_uid(), rows=8, cols=8, modality="OT")
    ds = dcmread(BytesIO(data))
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(SecondaryCaptureImageStorage, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", orthanc.settings.dicom_port, ae_title="PACS")
    if not assoc.is_established:
        return None, ds.SOPInstanceUID
    try:
        answer = assoc.send_c_store(ds)
        return (int(answer.Status) if "Status" in answer else None), ds.SOPInstanceUID
    finally:
        if assoc.is_established:
            assoc.release()


def stored_sops(orthanc: OrthancServer) -> set[str]:
    http = orthanc.http()
    return {http.get_json(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in http.get_json("/instances")}


@pytest.fixture
def orthanc_with_list(tmp_path):
    server = OrthancServer(tmp_path / "orthanc", {}, plugin=False)
    # CR1 may send from this machine; US2 only from an address this machine does not have (TEST-NET-1).
    server.settings = dataclasses.replace(server.settings, modalities="CR1@127.0.0.1:104,US2@192.0.2.99")
    server.start()
    yield server
    stop_later(server.stop)


def test_only_listed_devices_from_their_address_may_store(orthanc_with_list):
    o = orthanc_with_list
    status, listed = c_store(o, "CR1")
    assert status == 0x0000
    status_lower, listed_lower = c_store(o, "cr1")  # Orthanc compares AE titles without case
    assert status_lower == 0x0000

    unlisted_status, _ = c_store(o, "INTRUDER")
    wrong_address_status, _ = c_store(o, "US2")  # listed, but sends from 127.0.0.1
    assert unlisted_status != 0x0000 and wrong_address_status != 0x0000

    assert stored_sops(o) == {listed, listed_lower}
    log = o.log.read_text()
    assert "INTRUDER" in log and "not listed" in log
    assert "US2" in log and "should be 192.0.2.99" in log


def test_without_a_list_any_device_may_store(tmp_path):
    o = OrthancServer(tmp_path / "orthanc", {}, plugin=False)
    o.start()
    try:
        status, sop = c_store(o, "ANYONE")
        assert status == 0x0000 and stored_sops(o) == {sop}
    finally:
        stop_later(o.stop)


def test_unlisted_devices_still_get_an_echo_but_not_a_query(orthanc_with_list):
    # C-ECHO stays open (devices test their connection with it); C-FIND stays refused, as without a list.
    c_store(orthanc_with_list, "CR1")  # something to find
    for aet in ("INTRUDER", "CR1"):  # listed devices may store, not query
        ae = AE(ae_title=aet)
        ae.add_requested_context(Verification)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", orthanc_with_list.settings.dicom_port, ae_title="PACS")
        assert assoc.is_established
        try:
            assert int(assoc.send_c_echo().Status) == 0x0000
            query = Dataset()
            query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", ""
            answers = [
                (int(st.Status) if "Status" in st else None, found)
                for st, found in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
            ]
            assert not any(found is not None for _, found in answers), answers
            assert answers and answers[-1][0] not in (0x0000, 0xFF00), answers
        finally:
            if assoc.is_established:
                assoc.release()
