"""The console's HTML: two server-rendered pages (sign-in, dashboard); console.js fills the dashboard."""

from __future__ import annotations

from html import escape
from typing import Final

from shared.rules.categories import CATEGORY_CODES

ROUND_TYPES: Final = ("general", "pnp", "cec", "fsw", "fst", *CATEGORY_CODES)
STATIC: Final = "/console/static"


def _layout(title: str, body: str, *, scripts: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Express Entry ops console</title>
<link rel="stylesheet" href="{STATIC}/console.css">
</head>
<body>
{body}
{scripts}
</body>
</html>
"""


def login_page(*, error: str | None = None, dev_sign_in: bool, token: str = "") -> str:
    message = f'<p class="error" id="login-error" role="alert">{escape(error)}</p>' if error else ""
    dev = (
        """<form method="post" action="/console/login/dev" class="dev">
  <p>Development only (EE_ENV is not production): sign in with a freshly minted ops token.</p>
  <button type="submit" id="dev-sign-in">Development sign-in</button>
</form>"""
        if dev_sign_in
        else ""
    )
    body = f"""<main class="login">
<h1>Express Entry · ops console</h1>
{message}
<form method="post" action="/console/login">
  <label for="token">Ops token (a JWT with <code>role: ops</code>)</label>
  <textarea id="token" name="token" rows="4" required spellcheck="false">{escape(token)}</textarea>
  <button type="submit" id="sign-in">Sign in</button>
</form>
{dev}
</main>"""
    return _layout("Sign in", body)


def dashboard_page(*, sub: str, refresh_s: int) -> str:
    options = "\n".join(f'<option value="{t}">{t}</option>' for t in ROUND_TYPES)
    body = f"""<header>
  <h1>Express Entry · ops console</h1>
  <form method="post" action="/console/logout" class="who">
    <span id="who">signed in as <strong>{escape(sub)}</strong> (ops)</span>
    <button type="submit" id="sign-out">Sign out</button>
  </form>
</header>
<main class="dashboard" data-refresh-s="{refresh_s}">

<section id="pool">
  <h2>The pool now</h2>
  <p class="figure"><span id="pool-total">…</span> candidates in the pool
    <span class="muted" id="pool-asof"></span></p>
  <div class="chart">
    <canvas id="pool-chart" aria-label="The pool by CRS, beside IRCC's last distribution"></canvas>
  </div>
  <p class="muted" id="pool-ircc"></p>
  <form id="lookup-form" class="inline">
    <label for="lookup-id">Candidate lookup</label>
    <input id="lookup-id" name="profile_id" placeholder="profile id" required>
    <button type="submit">Look up</button>
  </form>
  <div id="lookup-result"></div>
</section>

<section id="rounds">
  <h2>Rounds of invitations</h2>
  <div class="chart">
    <canvas id="rounds-chart" aria-label="Cut-off and size of the rounds over time"></canvas>
  </div>
  <form id="plan-form" class="inline">
    <label for="plan-type">Round type</label>
    <select id="plan-type" name="type">{options}</select>
    <label for="plan-size">Size</label>
    <input id="plan-size" name="size" type="number" min="1" value="100" required>
    <button type="submit" id="plan-run">Dry run</button>
    <button type="button" id="hold-round" disabled>Hold this round…</button>
  </form>
  <div id="plan-result"></div>
  <div class="chart small">
    <canvas id="plan-chart" aria-label="Who the round would invite, by CRS"></canvas>
  </div>
  <h3>As IRCC publishes them</h3>
  <div id="rounds-table"></div>
</section>

<section id="applications">
  <h2>Applications</h2>
  <div id="applications-stats"></div>
  <h3>At risk of missing the six-month standard</h3>
  <div id="applications-at-risk"></div>
</section>

<section id="health">
  <h2>System health <span class="muted" id="health-updated"></span></h2>
  <div id="health-table"></div>
</section>

</main>"""
    scripts = (
        f'<script src="{STATIC}/vendor/chartjs/chart.umd.min.js"></script>\n'
        f'<script src="{STATIC}/console.js"></script>'
    )
    return _layout("Dashboard", body, scripts=scripts)
