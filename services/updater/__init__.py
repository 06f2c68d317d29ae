"""The update service: updates, rollbacks, builds and prunes run on the gateway, watched
and cancelled by any client on the bus."""
