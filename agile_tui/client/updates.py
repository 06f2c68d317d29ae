"""What the Updates screen shows of the update service's plan. The plan, the updates
and the rollbacks themselves run in the service (org.eclipse.agail.Updater) on the
gateway: agile-tui only asks and watches."""

from dataclasses import dataclass, field

from agile_tui.client.errors import BusError
from agile_tui.client.session import Session
from services import contract as c
from services.images.link_rate import prediction_text
from services.updater.client import UpdaterClient


def updater_of(session: Session) -> UpdaterClient:
    """The gateway's update service; BusError saying why there is no bus."""
    if session.gateway is None:
        raise BusError(session.bus_problem or "no gateway bus")
    return session.gateway.updater


@dataclass
class UpdateCheck:
    registry: str
    strategy: str
    services: list[c.ServicePlan] = field(default_factory=list)

    def _updates(self) -> list[c.ServicePlan]:
        return [s for s in self.services if s.has_plan and not s.up_to_date]

    @property
    def pending(self) -> list[str]:
        return [p.service for p in self._updates()]

    @property
    def total_bytes(self) -> int:
        return sum(p.download_bytes for p in self._updates())

    @property
    def predicted(self) -> str:
        """How long the pending downloads take at the gateway's link rate ("" unknown)."""
        updates = self._updates()
        if not updates or not updates[0].link_bit_s:
            return ""
        first = updates[0]
        return prediction_text(sum(p.seconds for p in updates), first.link_bit_s, first.link_source)
