"""store subsystem (see docs/architecture.md)."""
