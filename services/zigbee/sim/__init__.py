"""The virtual zigpy radio and its simulated devices."""
