"""The virtual BlueZ and its simulated peripherals."""
