"""The Images section's non-UI side: what can be built and layer analysis (builds run in
the gateway's update service). No Docker SDK here (it loads with the engine,
agile_tui.client.engine)."""

from buildhost.report import StackCost, stack_costs
from services.images.layers import ImageLayers, share
from services.images.recipes import LABEL, SERVICES, STRATEGIES, build_step

__all__ = [
    "LABEL",
    "SERVICES",
    "STRATEGIES",
    "ImageLayers",
    "StackCost",
    "build_step",
    "share",
    "stack_costs",
]
