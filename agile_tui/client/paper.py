"""The latest paper benchmark report (`./dev bench paper`), read from its output folder
for the Images section: Table I, Fig. 5's and Fig. 6's series and the paper's claims."""

import os
from pathlib import Path

from agile_tui.client.errors import ClientError
from buildhost.paper_report import CLAIMS, Panel, Report, read
from services.paths import ROOT

__all__ = ["CLAIMS", "REPORT_ENV", "Panel", "Report", "load_report", "report_dir"]

REPORT_ENV = "AGILE_PAPER_REPORT"


def report_dir() -> Path:
    """$AGILE_PAPER_REPORT, else where the benchmark writes by default."""
    return Path(os.environ.get(REPORT_ENV) or ROOT / "build" / "paper")


def load_report(folder: Path) -> Report:
    """ClientError, saying why, when there is no whole report there."""
    try:
        return read(folder)
    except (OSError, ValueError) as exc:
        raise ClientError(str(exc)) from None
