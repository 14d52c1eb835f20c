"""The plugin's REST routes, who may call them, and the engine's assembly (BackupService)."""
