"""Oracle: stripe-python's Webhook.construct_event on every case of a corpus.

stdin: [{"body_b64": "...", "header": "..." | null, "secrets": ["whsec_..."]}, ...]
stdout: [true|false, ...] — accepted if construct_event accepts under ANY secret.
"""
import base64
import json
import sys

import stripe


def accepts(body, header, secret):
    try:
        stripe.Webhook.construct_event(body, header, secret, tolerance=300)
        return True
    except Exception:
        return False


cases = json.load(sys.stdin)
out = [
    any(accepts(base64.b64decode(c["body_b64"]), c["header"], s) for s in c["secrets"])
    for c in cases
]
json.dump(out, sys.stdout)
