"""sidecar subsystem (see docs/architecture.md)."""
