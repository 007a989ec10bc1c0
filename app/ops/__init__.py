"""Running the app for real: backups, housekeeping, health and request logs."""
