"""The build and publish side: the base-image hierarchy, service images built and published
(with their delta bundles), the reports on their sizes. It runs on a build host, and on a
gateway that builds its own images (the update service's Build)."""
