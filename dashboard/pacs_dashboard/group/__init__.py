"""The group service (``DASHBOARD_MODE=group``): one catalog in PostgreSQL of every clinic's studies in the
group store, fed by the clinics (views/group_api.py), checked against the bucket (reconcile.py) and
rebuildable from the bucket alone. docs/groups.md describes it for a group's administrator."""
