"""BLE: the org.eclipse.agail.protocol.BLE adapter on bleak, and a virtual BlueZ."""
