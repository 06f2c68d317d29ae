"""A gateway's images: updates (the plan, the engine's pull, delta bundles, missing
layers), the update journal, layer analysis, the registry client and the bundles' format."""
