"""Every problem `type` the API can answer, with what it means: the list a client switches
on. The OpenAPI document gives it as the enum of `ProblemDetails.type`, so a type missing
here is an answer that does not match the document (a test reads the code base for every
type it can produce and holds this list to exactly those).

Each type's URI (`/problems/<code>`) also resolves, to a page with its title, what it means
and what to do about it (`courtois.web.pages.problem_pages`): a developer who meets one
in a log can open it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Resources whose unknown id answers `<kind>-not-found` (`api.common.not_found_as`).
NOT_FOUND_KINDS = ("consent", "invitation", "member")


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of error: a short title, what it means, and what the client can do."""

    title: str
    meaning: str
    advice: str


PROBLEM_TABLE: dict[str, ProblemType] = {
    "api-disabled": ProblemType(
        "API disabled",
        "No API key is configured on this server, so the API answers nobody.",
        "The operator sets `api_key` (COURTOIS_API_KEY) in the configuration and restarts.",
    ),
    "unauthorized": ProblemType(
        "Unauthorized",
        "No bearer API key, or not this server's.",
        "Send `Authorization: Bearer <key>` with the platform's API key.",
    ),
    "not-found": ProblemType(
        "Not found",
        "No such route, or no such thing for this caller.",
        "Check the path and the ids in it against the API document (/openapi.json).",
    ),
    "consent-not-found": ProblemType(
        "Consent not found",
        "No such consent.",
        "Use a consent id this API gave out, for this member.",
    ),
    "invitation-not-found": ProblemType(
        "Invitation not found",
        "No such invitation.",
        "Use an invitation id this API gave out, for this member.",
    ),
    "member-not-found": ProblemType(
        "Member not found",
        "No such member.",
        "Create the member first (POST /v1/members), or check the id.",
    ),
    "member-erased": ProblemType(
        "Member erased",
        "The member was erased; their id cannot be registered again.",
        "Give the person a new member id if they come back.",
    ),
    "method-not-allowed": ProblemType(
        "Method not allowed",
        "The route does not answer this method.",
        "Use one of the methods named in the answer's `Allow` header.",
    ),
    "conflict": ProblemType(
        "Conflict",
        "The request contradicts the current state.",
        "Read the current state again, then decide what to ask.",
    ),
    "illegal-transition": ProblemType(
        "Illegal transition",
        "The thing named cannot move to the state asked for.",
        "Read its current state; nothing was changed.",
    ),
    "consent-mismatch": ProblemType(
        "Consent mismatch",
        "The consent text is not the one the preview gave.",
        "Show the member the preview's `consent_text`; send it back as `consent.text_shown`.",
    ),
    "consent-revoked": ProblemType(
        "Consent revoked",
        "The consent was revoked; nothing more is sent under it.",
        "Ask the member for a new consent, with a new preview.",
    ),
    "stale-preview": ProblemType(
        "Stale preview",
        "The preview hash is not the one of the message as it renders now.",
        "Preview again, show the member the new message, and send its hash.",
    ),
    "invitation-closed": ProblemType(
        "Invitation closed",
        "The invitation is closed and cannot be withdrawn.",
        "Nothing to do: nothing more is sent about it.",
    ),
    "invitation-sending": ProblemType(
        "Invitation being sent",
        "Its email is being handed to the mail server right now and may already have left.",
        "Read the invitation again in a moment to see how the sending ended.",
    ),
    "invitation-in-doubt": ProblemType(
        "Invitation in doubt",
        "Its email may already have left: a worker stopped while handing it to the mail "
        "server, so nobody knows yet whether it arrived, and it is never sent again by itself.",
        "Wait for an admin to settle it (the invitation's `message_status` is then no longer "
        "`unknown`); withdraw it afterwards if it is still open.",
    ),
    "idempotency-key-in-use": ProblemType(
        "Idempotency key in use",
        "A request with this key is still running; retry after Retry-After.",
        "Wait the seconds in `Retry-After`, then send the same request again.",
    ),
    "idempotency-key-reused": ProblemType(
        "Idempotency key reused",
        "This key was already used for a different request.",
        "Use a new `Idempotency-Key` for each different request.",
    ),
    "content-too-large": ProblemType(
        "Content too large",
        "The body is over the limit; nothing was read past it.",
        "Send a smaller body: fewer items per call, or a smaller file.",
    ),
    "unsupported-media-type": ProblemType(
        "Unsupported media type",
        "The body is not of a media type this route reads.",
        "Send the `Content-Type` the API document gives for this route.",
    ),
    "invalid-request": ProblemType(
        "Invalid request",
        "The request does not match the document (fields, types, JSON).",
        "Fix the fields named in `errors` against the API document.",
    ),
    "invalid-input": ProblemType(
        "Invalid input",
        "A value that can never be accepted as given; `errors` names each.",
        "Change the values named in `errors`; sending them again fails again.",
    ),
    "invalid-address": ProblemType(
        "Invalid address",
        "An email address that does not parse.",
        "Correct the address or leave it out.",
    ),
    "strict-eu-no-reminders": ProblemType(
        "No reminders under strict-eu",
        "A reminder asked for under the strict-eu profile, where members send their own "
        "invitations and no email follows them; ask for `reminders: 0`.",
        "Send `reminders: 0`.",
    ),
    "invalid-cursor": ProblemType(
        "Invalid cursor",
        "A cursor this API did not give out.",
        "Start the list again without `cursor`, then follow the `next_cursor` it gives.",
    ),
    "invalid-upload": ProblemType(
        "Invalid upload",
        "The upload is not a file this route reads.",
        "Send one file as multipart/form-data in the `file` field, with a known `format`.",
    ),
    "unreadable-file": ProblemType(
        "Unreadable file",
        "The file cannot be read as an address book.",
        "Export the address book again as vCard, CSV or LDIF, or name its format.",
    ),
    "domain-error": ProblemType(
        "Refused",
        "A refusal of another kind; `detail` says what.",
        "Read `detail`; nothing was changed.",
    ),
    "internal-error": ProblemType(
        "Internal error",
        "A fault on the server; nothing was changed.",
        "Try again later; if it goes on, the operator finds the fault in the server's log.",
    ),
    "database-unavailable": ProblemType(
        "Database unavailable",
        "The database cannot be reached; retry after Retry-After.",
        "Wait the seconds in `Retry-After`, then send the same request again.",
    ),
    "storage-full": ProblemType(
        "Storage full",
        "The database has no room left; retry after Retry-After.",
        "Wait the seconds in `Retry-After` and try again; the operator frees disk space.",
    ),
    "reminder-over-cap": ProblemType(
        "Reminder over the policy's cap",
        "A reminder asked for where the platform's policy allows none (`reminder_cap = 0`); "
        "ask for `reminders: 0`.",
        "Send `reminders: 0`.",
    ),
}

PROBLEM_TYPES: dict[str, str] = {code: kind.meaning for code, kind in PROBLEM_TABLE.items()}

PROBLEM_URIS = tuple(f"/problems/{code}" for code in sorted(PROBLEM_TYPES))
