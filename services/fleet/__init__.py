"""Many gateways from one operator's machine, over SSH only: their list, the tunnel to
each (its bus and its Docker engine), their status, and staged rollouts."""
