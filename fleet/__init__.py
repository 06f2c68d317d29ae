"""The operator's side, from one operator's machine, over SSH only: the operator's
settings file (agile-tui's and the fleet's), the gateways, the tunnel to each (its bus and
its Docker engine), their status, and staged rollouts."""
