"""The Express Entry rules as pure Python: no framework, database or broker imports.

Both the profile service (eligibility) and the ranking service (CRS) use this one module, so a fact is
derived the same way wherever it is needed.
"""
