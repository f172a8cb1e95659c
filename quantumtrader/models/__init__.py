"""models subsystem (see docs/architecture.md)."""
