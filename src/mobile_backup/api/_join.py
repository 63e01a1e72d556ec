"""`GET /v1/join`: the page an invite link opens in a browser.

An invite travels as `https://API/v1/join#TOKEN`; the fragment (the invite itself) never
reaches this server, so the page is the same for everyone and reflects nothing of the
request. It says what to do, and its one small script (allowed by its hash in the page's
Content-Security-Policy, nothing else may run) reads the fragment in the browser to offer
the phone app's link (`mobilebackup://join?i=TOKEN`) and the invite to copy.
"""

from __future__ import annotations

import base64
import hashlib

SCRIPT = """
const token = decodeURIComponent(location.hash.replace(/^#(i=)?/, ""));
if (/^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{8}$/.test(token)) {
  document.getElementById("open").href = "mobilebackup://join?i=" + token;
  document.getElementById("invite").value = location.href;
  document.getElementById("found").hidden = false;
} else {
  document.getElementById("missing").hidden = false;
}
"""

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Join your household's Mobile Backup</title>
<style>
body {{ font: 17px/1.5 system-ui, sans-serif; max-width: 34em; margin: 2em auto;
       padding: 0 1em; color: #1b1b1f; }}
a.button {{ display: inline-block; padding: .6em 1.2em; border-radius: 1.5em;
            background: #3f51b5; color: #fff; text-decoration: none; }}
textarea {{ width: 100%; font: 14px monospace; }}
code {{ background: #eee; padding: 0 .3em; }}
</style></head>
<body>
<h1>Join your household's Mobile Backup</h1>
<p>Someone in your household invited you to back up your photos and videos to the family
PC, through the household's own cloud.</p>
<div id="found" hidden>
<p><a class="button" id="open" href="#">Open in the Mobile Backup app</a></p>
<p>No app link on this device? Open the Mobile Backup app, choose
<b>Join with an invite</b> and paste this invite:</p>
<textarea id="invite" rows="4" readonly aria-label="Your invite"></textarea>
<p>On a computer: <code>mobile-backup login --invite 'LINK'</code>, with the invite in
place of LINK.</p>
<p>You will need the temporary password you were given, and will choose your own.</p>
</div>
<p id="missing" hidden>This link has lost its invite (the part after <code>#</code>): ask
the person who invited you to send it again.</p>
<noscript><p>Copy this page's whole address and paste it into the Mobile Backup app
(<b>Join with an invite</b>).</p></noscript>
<script>{SCRIPT}</script>
</body></html>
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
HEADERS = {
    # Only this page's own script and style; no frames, forms, plugins or other origins.
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}
