"""Voice weight files shipped with the package (the distilled AR voice)."""
