"""ddns-wizard's user-facing side: the command line and the Textual app."""
