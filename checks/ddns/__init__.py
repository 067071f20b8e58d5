"""Dynamic DNS: the updater, the watch loop, the update history and the providers."""
