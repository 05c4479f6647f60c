"""The dock widgets and their Qt parts (generated config forms, live plots, job controls)."""
