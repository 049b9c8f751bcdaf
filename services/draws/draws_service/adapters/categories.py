"""Category versions from the shared rules (`shared.rules.categories`)."""

from __future__ import annotations

from datetime import date

from shared.rules.categories import categories_in_force


class RulesCategories:
    """`Categories` over the versioned category data every service shares."""

    def version_in_force(self, code: str, on: date) -> str | None:
        for version in categories_in_force(on):
            if version.code == code:
                return version.version
        return None
