"""Container images: the base-image hierarchy, service images and their analysis."""
