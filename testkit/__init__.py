"""What tests and benchmarks both run against: a local registry, private Docker engines,
an emulated and a flaky link over a TCP proxy, an MQTT broker, sshd and tmux, and the
images they make. Real daemons on private addresses, cleaned up after; never shipped."""
