"""execution subsystem (see docs/architecture.md)."""
