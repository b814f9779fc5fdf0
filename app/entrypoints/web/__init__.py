"""Browser-facing presentation: HTML rendering, the server-side SVG chart and the dev login helpers.

Nothing here is loaded from another host: no CDN, no web fonts, no external images. Pages carry a strict
Content-Security-Policy with a per-response nonce for their one inline style and script.
"""
