"""The main window's pages: Speak, Voices, Stats, Settings."""
