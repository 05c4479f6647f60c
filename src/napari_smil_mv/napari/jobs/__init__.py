"""Long-running work as plain Python generators (no Qt, no viewer) that the widgets run in worker threads."""
