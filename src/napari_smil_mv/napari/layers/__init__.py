"""Pure layer-data builders (numpy in, napari layer tuples out; no viewer, no Qt) and the lazy arrays they use."""
