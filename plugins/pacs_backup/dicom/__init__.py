"""Reading DICOM files in bounded memory: the incoming-file check and previews."""
