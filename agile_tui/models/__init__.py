"""Each section's data, fetched away from its screen: a model asks the gateway or the
engine through agile_tui.client and hands what it got to its screen, which only renders
it and sends the operator's intents. No textual here."""
