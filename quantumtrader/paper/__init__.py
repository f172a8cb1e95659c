"""paper subsystem (see docs/architecture.md)."""
