"""The Dummy protocol: simulated devices, the template for the radio adapters."""
