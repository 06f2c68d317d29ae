"""Running the gateway: the service catalog, the native/demo supervisor, the CLI."""
