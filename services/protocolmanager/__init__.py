"""org.eclipse.agail.ProtocolManager: the registry of protocols and of discovered devices."""
