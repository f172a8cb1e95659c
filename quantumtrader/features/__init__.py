"""features subsystem (see docs/architecture.md)."""
