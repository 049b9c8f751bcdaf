"""The ranking service: CRS scoring (versioned rules) and the live CRS-ordered pool projection."""
