"""The five sections: their keys, names and screens. A section's screen module is
imported when the section first opens, not at start-up: the first paint waits only for
the section it shows."""

import importlib
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    help: str
    module: str  # in agile_tui.screens
    screen: str  # its class

    def screen_class(self) -> type[Screen[None]]:
        module = importlib.import_module(f"agile_tui.screens.{self.module}")
        screen: type[Screen[None]] = getattr(module, self.screen)
        return screen

    def make(self) -> Screen[None]:
        return self.screen_class()()


SECTIONS = {
    "containers": Section(
        "1",
        "Containers",
        "Containers and service processes of the stack",
        "containers",
        "ContainersScreen",
    ),
    "devices": Section(
        "2", "Devices", "Discovered and registered devices, pairing", "devices", "DevicesScreen"
    ),
    "data": Section("3", "Data", "Live charts of device components", "data", "DataScreen"),
    "images": Section(
        "4", "Images", "Images, layers, shared and unique bytes", "images", "ImagesScreen"
    ),
    "fleet": Section(
        "5", "Fleet", "Every gateway over SSH; staged rollouts", "fleet", "FleetScreen"
    ),
}
