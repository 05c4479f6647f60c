"""Small shared helpers (file safety, progress events) used by every part of the core."""
