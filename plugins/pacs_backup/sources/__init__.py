"""Every copy as a source: one protocol (list studies, read a study's instances) played by the PACS, the
bucket, a drive, a restic snapshot of any date and the cloud PACS. The viewer, sharing and exports read
through it, so a study is seen from a copy without being written back into the PACS first."""
