"""Command-line sub-commands (one module each, registered in :mod:`napari_smil_mv.cli`)."""
