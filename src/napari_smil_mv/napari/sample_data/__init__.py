"""napari sample data: the demo insect in motion and the synthetic multi-camera session."""
