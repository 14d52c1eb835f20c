"""Serve the dashboard with waitress (a production WSGI server): ``python -m pacs_dashboard``.

``python -m pacs_dashboard group ...``: the group service's commands (add-clinic, revoke-clinic, reconcile, rebuild).
"""

from __future__ import annotations

import logging
import os
import sys

from pacs_backup.contracts.errors import BackupError, ConfigError
from pacs_backup.state.migrate import SchemaTooNew


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if sys.argv[1:2] == ["group"]:  # the group service's commands (group/cli.py)
        from .group.cli import main as group_main

        return group_main(sys.argv[2:])
    from waitress import serve

    from . import create_app

    try:
        app = create_app()
    except (ConfigError, SchemaTooNew) as exc:  # a wrong setting; a file from a newer dashboard
        print(f"dashboard not started: {exc}", file=sys.stderr)
        return 2
    except BackupError as exc:  # group mode: the catalog's PostgreSQL cannot be reached (yet)
        print(f"dashboard not started: {exc}", file=sys.stderr)
        return 3
    host = os.environ.get("DASHBOARD_HOST", "127.0.0.1")
    port = int(os.environ.get("DASHBOARD_PORT", "8080"))
    serve(app, host=host, port=port, threads=8, ident="pacs-dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
