"""The HTTP edge: the host API (`/v1`), the recipient pages, member and admin pages.

Routes translate HTTP to use cases in `courtois.services` and back; no rule of the policy
lives here.
"""
