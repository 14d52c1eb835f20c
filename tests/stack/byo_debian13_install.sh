#!/bin/sh
# docs/install-existing-orthanc.md, steps 2 to 5, on Debian's packaged Orthanc (run in its container).
# Only the ports are this test's own (an installer keeps 8042 and 4242).
set -eu
python3 -m venv /opt/pacs-backup
/opt/pacs-backup/bin/pip install --quiet --no-index --find-links /wheelhouse /dist/pacs_backup-*.whl
/opt/pacs-backup/bin/pacs-backup orthanc-snippet --debian >/tmp/snippet.json
entry="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["orthanc_configuration"]["PythonScript"])' </tmp/snippet.json)"
sed -i "s#\"PythonScript\" *: *\"[^\"]*\"#\"PythonScript\" : \"$entry\"#" /etc/orthanc/python.json
grep -q '"StorageCompression" *: *false' /etc/orthanc/orthanc.json
sed -i "s#\"HttpPort\" *: *8042#\"HttpPort\" : $HTTP_PORT#; s#\"DicomPort\" *: *4242#\"DicomPort\" : $DICOM_PORT#" \
  /etc/orthanc/orthanc.json
python3 -c 'import json,sys; e=json.load(sys.stdin)["environment"]; print("\n".join(f"{k}={v}" for k, v in e.items()))' \
  </tmp/snippet.json >/etc/pacs-backup.env
cat /plugin.env >>/etc/pacs-backup.env
chmod 600 /etc/pacs-backup.env
# What systemd does with the drop-in: read the environment file as root, then start Orthanc as its user.
set -a; . /etc/pacs-backup.env; set +a
install -d -o orthanc -g orthanc /var/log/orthanc
echo "installed; starting Orthanc"
exec setpriv --reuid orthanc --regid orthanc --init-groups /usr/sbin/Orthanc --logdir=/var/log/orthanc /etc/orthanc
