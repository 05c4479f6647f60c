"""napari integration: readers, sample data, layer builders and dock widgets (the only Qt/napari code)."""
