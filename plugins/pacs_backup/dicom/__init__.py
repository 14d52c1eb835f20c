"""Reading DICOM files in bounded memory: the incoming-file check, previews, and DICOMweb answers (DICOM JSON,
frames as stored, multipart bodies)."""
