"""Every problem `type` the API can answer, with what it means: the list a client switches
on. The OpenAPI document gives it as the enum of `ProblemDetails.type`, so a type missing
here is an answer that does not match the document (a test reads the code base for every
type it can produce and holds this list to exactly those)."""

from __future__ import annotations

# Resources whose unknown id answers `<kind>-not-found` (`api.common.not_found_as`).
NOT_FOUND_KINDS = ("consent", "invitation", "member")

PROBLEM_TYPES: dict[str, str] = {
    "api-disabled": "No API key is configured on this server, so the API answers nobody.",
    "unauthorized": "No bearer API key, or not this server's.",
    "not-found": "No such route, or no such thing for this caller.",
    "consent-not-found": "No such consent.",
    "invitation-not-found": "No such invitation.",
    "member-not-found": "No such member.",
    "member-erased": "The member was erased; their id cannot be registered again.",
    "method-not-allowed": "The route does not answer this method.",
    "conflict": "The request contradicts the current state.",
    "illegal-transition": "The thing named cannot move to the state asked for.",
    "consent-mismatch": "The consent text is not the one the preview gave.",
    "consent-revoked": "The consent was revoked; nothing more is sent under it.",
    "stale-preview": "The preview hash is not the one of the message as it renders now.",
    "invitation-closed": "The invitation is closed and cannot be withdrawn.",
    "invitation-sending": "Its email is being sent right now and can no longer be stopped.",
    "idempotency-key-in-use": "A request with this key is still running; retry after Retry-After.",
    "idempotency-key-reused": "This key was already used for a different request.",
    "content-too-large": "The body is over the limit; nothing was read past it.",
    "unsupported-media-type": "The body is not of a media type this route reads.",
    "invalid-request": "The request does not match the document (fields, types, JSON).",
    "invalid-input": "A value that can never be accepted as given; `errors` names each.",
    "invalid-address": "An email address that does not parse.",
    "strict-eu-no-reminders": (
        "A reminder asked for under the strict-eu profile, where members send their own "
        "invitations and no email follows them; ask for `reminders: 0`."
    ),
    "reminder-over-cap": (
        "A reminder asked for where the platform's policy allows none (`reminder_cap = 0`); "
        "ask for `reminders: 0`."
    ),
    "invalid-cursor": "A cursor this API did not give out.",
    "invalid-upload": "The upload is not a file this route reads.",
    "unreadable-file": "The file cannot be read as an address book.",
    "domain-error": "A refusal of another kind; `detail` says what.",
    "internal-error": "A fault on the server; nothing was changed.",
    "database-unavailable": "The database cannot be reached; retry after Retry-After.",
    "storage-full": "The database has no room left; retry after Retry-After.",
}

PROBLEM_URIS = tuple(f"/problems/{code}" for code in sorted(PROBLEM_TYPES))
