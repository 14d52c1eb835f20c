"""Settings read once from the environment, the object store's account policies, the recovery sheet."""
