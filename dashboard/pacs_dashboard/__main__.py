"""Serve the dashboard with waitress (a production WSGI server): ``python -m pacs_dashboard``."""

from __future__ import annotations

import logging
import os
import sys

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.state.migrate import SchemaTooNew


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from waitress import serve

    from . import create_app

    try:
        app = create_app()
    except (ConfigError, SchemaTooNew) as exc:  # a wrong setting; a file from a newer dashboard
        print(f"dashboard not started: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("DASHBOARD_HOST", "127.0.0.1")
    port = int(os.environ.get("DASHBOARD_PORT", "8080"))
    serve(app, host=host, port=port, threads=8, ident="pacs-dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
