"""daemon subsystem (see docs/architecture.md)."""
