"""The pure domain of the profile service: the Profile aggregate, its events, its rules. No I/O."""
