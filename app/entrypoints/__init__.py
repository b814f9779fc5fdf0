"""Thin entrypoints: HTTP handlers and CLIs that call the service layer."""
