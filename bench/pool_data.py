"""Static tables the synthetic pool draws from: NOC 2021 occupations, country codes, names.

Occupations are NOC 2021 unit groups (five digits; the second digit is the TEER) that Express Entry
candidates commonly hold, with a rough popularity weight. Country names are those of IRCC's admissions
table (`ee_admissions_by_citizenship_year.csv`), mapped to ISO 3166-1 alpha-2 codes.
"""

from __future__ import annotations

from typing import Final

# (NOC 2021 unit group, weight). Weights are relative popularity among candidates, not published data.
OCCUPATIONS: Final[tuple[tuple[str, float], ...]] = (
    # TEER 0: managers
    ("00012", 0.3), ("00013", 0.2), ("00014", 0.2), ("00015", 0.2),
    ("10010", 1.2), ("10019", 0.8), ("10020", 0.5), ("10022", 0.9), ("20010", 0.6), ("20012", 1.2),
    ("30010", 0.4), ("60020", 1.0), ("60030", 1.4), ("70010", 0.6), ("90010", 0.5),
    # TEER 1: professionals
    ("11100", 3.0), ("11101", 2.2), ("11102", 1.0), ("11200", 1.6), ("11201", 1.4), ("11202", 1.6),
    ("21100", 0.2), ("21101", 0.4), ("21110", 0.4), ("21210", 0.5), ("21211", 1.5), ("21220", 1.0),
    ("21221", 1.5), ("21222", 2.0), ("21223", 1.2), ("21231", 3.5), ("21232", 3.0), ("21233", 0.6),
    ("21234", 1.5), ("21300", 1.5), ("21301", 1.4), ("21310", 1.2), ("21311", 0.6), ("21320", 0.4),
    ("31100", 0.1), ("31101", 0.1), ("31102", 0.3), ("31110", 0.2), ("31111", 0.1), ("31112", 0.2),
    ("31120", 0.5), ("31121", 0.2), ("31200", 0.2), ("31201", 0.1), ("31202", 0.4), ("31203", 0.2),
    ("31209", 0.1), ("31300", 0.3), ("31301", 2.2), ("31302", 0.2),
    ("41200", 0.5), ("41201", 0.4), ("41220", 0.9), ("41221", 0.8), ("41300", 0.6),
    # TEER 2: technical occupations, supervisors, trades
    ("12010", 0.8), ("12011", 0.4), ("12100", 0.6), ("12200", 1.2),
    ("22220", 1.0), ("22221", 1.2), ("22222", 0.6), ("22300", 0.6), ("22301", 0.5), ("22310", 0.6),
    ("22313", 0.2),
    ("32101", 0.9), ("32102", 0.3), ("32104", 0.2), ("32109", 0.2), ("32111", 0.3), ("32120", 0.4),
    ("32121", 0.2), ("32122", 0.2), ("32123", 0.1), ("32129", 0.2), ("32201", 0.3),
    ("42201", 0.8), ("42202", 1.0), ("42203", 0.3),
    ("62010", 2.0), ("62020", 2.4), ("62100", 0.6), ("62200", 0.8),
    ("72106", 0.5), ("72200", 0.8), ("72201", 0.3), ("72300", 0.4), ("72310", 0.5), ("72400", 0.4),
    ("72401", 0.4), ("72402", 0.3), ("72404", 0.2), ("72410", 0.6), ("72600", 0.2),
    # TEER 3: clerical, care, cooks, drivers
    ("13100", 2.0), ("13102", 0.5), ("13110", 1.6),
    ("33101", 0.3), ("33102", 1.2), ("33103", 0.3),
    ("43100", 0.4),
    ("63200", 2.0), ("63201", 0.3), ("63202", 0.4),
    ("73200", 0.2), ("73300", 0.9), ("73400", 0.2),
)  # fmt: skip

# Jobs that never count for Express Entry (TEER 4 and 5): part-time work while studying.
STUDENT_JOBS: Final[tuple[str, ...]] = ("64100", "64409", "65100", "65201", "65310", "75101")

# Job offers from the Canadian Armed Forces (the `military` category): officers and operations members.
ARMED_FORCES_OCCUPATIONS: Final[tuple[str, ...]] = ("40042", "43204")

# IRCC's country-of-citizenship names -> ISO 3166-1 alpha-2. "Stateless" and "Other" have no code.
COUNTRY_CODES: Final[dict[str, str]] = {
    "Afghanistan": "AF", "Albania": "AL", "Algeria": "DZ", "Andorra": "AD", "Angola": "AO",
    "Antigua and Barbuda": "AG", "Argentina": "AR", "Armenia": "AM", "Australia": "AU", "Austria": "AT",
    "Azerbaijan": "AZ", "Azores": "PT", "Bahama Islands, The": "BS", "Bahrain": "BH", "Bangladesh": "BD",
    "Barbados": "BB", "Belarus": "BY", "Belgium": "BE", "Belize": "BZ", "Benin, Republic of": "BJ",
    "Bhutan": "BT", "Bolivia": "BO", "Bosnia-Herzegovina": "BA", "Botswana, Republic of": "BW",
    "Brazil": "BR", "Brunei": "BN", "Bulgaria": "BG", "Burkina-Faso": "BF", "Burundi": "BI",
    "Cambodia": "KH", "Cameroon, Federal Republic of": "CM", "Cape Verde Islands": "CV",
    "Central African Republic": "CF", "Chad, Republic of": "TD", "Chile": "CL",
    "China, People's Republic of": "CN", "Colombia": "CO", "Comoros": "KM",
    "Congo, Democratic Republic of the": "CD", "Congo, People's Republic of the": "CG", "Costa Rica": "CR",
    "Croatia": "HR", "Cuba": "CU", "Curacao": "CW", "Cyprus": "CY", "Czech Republic": "CZ", "Denmark": "DK",
    "Djibouti, Republic of": "DJ", "Dominica": "DM", "Dominican Republic": "DO", "Ecuador": "EC",
    "Egypt": "EG", "El Salvador": "SV", "Equatorial Guinea, Republic of": "GQ", "Eritrea": "ER",
    "Estonia": "EE", "Ethiopia": "ET", "Fiji": "FJ", "Finland": "FI", "France": "FR", "Gabon Republic": "GA",
    "Gambia": "GM", "Georgia": "GE", "Germany": "DE", "Ghana": "GH", "Greece": "GR", "Grenada": "GD",
    "Guatemala": "GT", "Guinea, Republic of": "GN", "Guinea-Bissau": "GW", "Guyana": "GY", "Haiti": "HT",
    "Honduras": "HN", "Hong Kong SAR": "HK", "Hungary": "HU", "Iceland": "IS", "India": "IN",
    "Indonesia, Republic of": "ID", "Iran": "IR", "Iraq": "IQ", "Ireland, Republic of": "IE", "Israel": "IL",
    "Italy": "IT", "Ivory Coast, Republic of": "CI", "Jamaica": "JM", "Japan": "JP", "Jordan": "JO",
    "Kazakhstan": "KZ", "Kenya": "KE", "Korea, Republic of": "KR", "Kosovo, Republic of": "XK",
    "Kuwait": "KW", "Kyrgyzstan": "KG", "Laos": "LA", "Latvia": "LV", "Lebanon": "LB", "Lesotho": "LS",
    "Liberia": "LR", "Libya": "LY", "Liechtenstein": "LI", "Lithuania": "LT", "Luxembourg": "LU",
    "Macau SAR": "MO", "Macedonia": "MK", "Madagascar": "MG", "Malawi": "MW", "Malaysia": "MY",
    "Maldives, Republic of": "MV", "Mali, Republic of": "ML", "Malta": "MT", "Mauritania": "MR",
    "Mauritius": "MU", "Mexico": "MX", "Moldova": "MD", "Monaco": "MC",
    "Mongolia, People's Republic of": "MN",
    "Montenegro, Republic of": "ME", "Morocco": "MA", "Mozambique": "MZ", "Myanmar (Burma)": "MM",
    "Namibia": "NA", "Nepal": "NP", "Netherlands Antilles, The": "CW", "Netherlands, The": "NL",
    "New Caledonia": "NC", "New Zealand": "NZ", "Nicaragua": "NI", "Niger, Republic of the": "NE",
    "Nigeria": "NG", "Norway": "NO", "Oman": "OM", "Pakistan": "PK",
    "Palestinian Authority (Gaza/West Bank)": "PS", "Panama, Republic of": "PA", "Papua New Guinea": "PG",
    "Paraguay": "PY", "Peru": "PE", "Philippines": "PH", "Poland": "PL", "Portugal": "PT", "Qatar": "QA",
    "Romania": "RO", "Russia": "RU", "Rwanda": "RW", "San Marino": "SM", "Saudi Arabia": "SA",
    "Senegal": "SN", "Serbia, Republic of": "RS", "Seychelles": "SC", "Sierra Leone": "SL",
    "Singapore": "SG", "Sint-Maarten": "SX", "Slovak Republic": "SK", "Slovenia": "SI",
    "Solomon Islands": "SB", "Somalia, Democratic Republic of": "SO", "South Africa, Republic of": "ZA",
    "South Sudan, Republic of": "SS", "Spain": "ES", "Sri Lanka": "LK", "St. Kitts-Nevis": "KN",
    "St. Lucia": "LC", "St. Vincent and the Grenadines": "VC", "Sudan, Democratic Republic of": "SD",
    "Surinam": "SR", "Swaziland": "SZ", "Sweden": "SE", "Switzerland": "CH", "Syria": "SY", "Taiwan": "TW",
    "Tajikistan": "TJ", "Tanzania, United Republic of": "TZ", "Thailand": "TH", "Togo, Republic of": "TG",
    "Trinidad and Tobago, Republic of": "TT", "Tunisia": "TN", "Turkey": "TR", "Turkmenistan": "TM",
    "Uganda": "UG", "Ukraine": "UA", "United Arab Emirates": "AE",
    "United Kingdom and Overseas Territories": "GB", "United States of America": "US", "Uruguay": "UY",
    "Uzbekistan": "UZ", "Venezuela": "VE", "Vietnam": "VN", "Virgin Islands, British": "VG", "Yemen": "YE",
    "Zambia": "ZM", "Zimbabwe": "ZW",
}  # fmt: skip
NO_COUNTRY_CODE: Final[frozenset[str]] = frozenset(
    {"Stateless", "Other", "Total - All Countries of Citizenship"}
)

# Citizenships where French is an official or widely used language of study and work.
FRANCOPHONE: Final[frozenset[str]] = frozenset(
    {
        "FR", "BE", "CH", "LU", "MC", "MA", "DZ", "TN", "MR", "LB", "CM", "CI", "SN", "BJ", "TG", "BF", "ML",
        "NE", "GN", "CD", "CG", "GA", "TD", "CF", "DJ", "KM", "MG", "MU", "SC", "RW", "BI", "HT",
    }
)  # fmt: skip

# Countries where candidates abroad often live and work without being citizens.
THIRD_COUNTRIES: Final[tuple[tuple[str, float], ...]] = (
    ("AE", 5.0), ("SA", 2.0), ("QA", 1.5), ("KW", 1.0), ("OM", 0.5), ("US", 3.0), ("GB", 2.0),
    ("SG", 0.8), ("AU", 0.7), ("DE", 0.7), ("IE", 0.5), ("NZ", 0.3),
)  # fmt: skip

# (organization, weight) of the designated ECA organizations.
ECA_ORGANIZATIONS: Final[tuple[tuple[str, float], ...]] = (
    ("WES", 60.0), ("ICAS", 10.0), ("IQAS", 9.0), ("CES", 9.0), ("ICES", 9.0), ("MCC", 1.0), ("PEBC", 1.0),
    ("Engineers Canada", 1.0),
)  # fmt: skip

# Provinces and territories with a nominee program (Quebec selects its own; Nunavut has none).
NOMINATING_PROVINCES: Final[tuple[tuple[str, float], ...]] = (
    ("ON", 30.0), ("BC", 18.0), ("AB", 14.0), ("SK", 10.0), ("MB", 9.0), ("NS", 7.0), ("NB", 5.0),
    ("NL", 3.0), ("PE", 2.0), ("YT", 1.0), ("NT", 1.0),
)  # fmt: skip

EMPLOYER_FIRST: Final[tuple[str, ...]] = (
    "Maple", "Northern", "Laurentian", "Pacific", "Prairie", "Atlantic", "Boreal", "Cedar", "Granite",
    "Harbour", "Lakeshore", "Summit", "Aurora", "Riverbend", "Tundra", "Frontier", "Keystone", "Bluewater",
)  # fmt: skip
EMPLOYER_SECOND: Final[tuple[str, ...]] = (
    "Systems", "Health", "Construction", "Logistics", "Foods", "Analytics", "Engineering", "Care",
    "Software", "Manufacturing", "Hospitality", "Consulting", "Electric", "Mechanical", "Services",
)  # fmt: skip
EMPLOYER_SUFFIX: Final[tuple[str, ...]] = ("Inc.", "Ltd.", "Corp.", "LLP", "Group", "Co-operative")

# Partner portals that create profiles on candidates' behalf: the `owner` (JWT `sub`) of the events.
PARTNER_SUBS: Final[tuple[str, ...]] = tuple(f"bench-partner-{i:02d}" for i in range(24))
