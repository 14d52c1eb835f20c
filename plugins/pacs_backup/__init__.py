"""Backup engine for the clinic PACS appliance.

The engine is a plain Python package: it never imports ``orthanc``. The Orthanc entry module
(``plugins/orthanc_entry.py``) registers callbacks and hands work to :class:`Replicator`.
"""

__version__ = "0.1.0"
