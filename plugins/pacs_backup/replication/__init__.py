"""The copy queue: outbox, replicator threads, and the cloud PACS queue."""
