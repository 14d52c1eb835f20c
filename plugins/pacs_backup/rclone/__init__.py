"""Cloud-storage (rclone) configurations: the allow-list, forms, and rclone run as its own user."""
