"""The plugin's SQLite file: schema and migrations, catalog and search, manifests, run history."""
