"""Sending to addresses users type in, safely: SSRF-checked destinations and Standard Webhooks signing.

A library under the apps: no Django, no app imports. `projects` checks a webhook URL and makes its secret with
it; the `webhooks` app signs and sends with it.
"""
