"""bench subsystem (see docs/architecture.md)."""
