"""npe2 readers: sessions, plain .slp files, results files and datasets."""
