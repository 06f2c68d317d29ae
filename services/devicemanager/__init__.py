"""org.eclipse.agail.DeviceManager and the org.eclipse.agail.Device objects it serves."""
