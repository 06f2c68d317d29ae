"""ZigBee: the org.eclipse.agail.protocol.ZB adapter on zigpy, and a virtual radio."""
