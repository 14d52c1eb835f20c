"""Wrap a root file system tar as a one-layer image for `docker load`, with its architecture set.

`docker import --platform` records the host's architecture on this engine, and images built FROM such a
base for another platform then fail at their first COPY; an image whose configuration names its
architecture does not.   usage: rootfs_image.py ROOTFS.tar TAG ARCH | docker load
"""

import hashlib
import io
import json
import sys
import tarfile

layer_path, tag, arch = sys.argv[1], sys.argv[2], sys.argv[3]
h = hashlib.sha256()
with open(layer_path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
diff_id = "sha256:" + h.hexdigest()
config = {
    "architecture": arch,
    "os": "linux",
    **({"variant": "v8"} if arch == "arm64" else {}),
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["bash"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created_by": "debootstrap --variant=minbase trixie"}],
}
cfg = json.dumps(config).encode()
cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as out:
    for name, data in ((cfg_name, cfg), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    out.add(layer_path, arcname="layer/layer.tar")
