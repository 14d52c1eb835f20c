"""Clients of other programs: Orthanc, the S3 store, restic, and cloud PACS peers (DICOMweb, DIMSE)."""
