"""The agile theme: chosen from the 16 ANSI colours' neighbourhood so it survives 256-colour and
16-colour terminals (COLORTERM is not forwarded over SSH by default)."""

from textual.theme import Theme

AGILE_THEME = Theme(
    name="agile",
    primary="#0087af",  # xterm-256 31: deep sky blue
    secondary="#5f87af",
    accent="#d7af00",
    foreground="#d0d0d0",
    background="#121212",
    surface="#1c1c1c",
    panel="#262626",
    success="#5faf5f",
    warning="#d7af00",
    error="#d75f5f",
    dark=True,
)
