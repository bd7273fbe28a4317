"""What a member's display name must not do in an email: carry invisible characters, pass
for an address, or make the subject read as a reply, a forward or a reminder.

A name opens every invitation's subject and is the sender's name in From, so "Reminder:
Ana Lima" makes a first invitation read as the second, and "Ana <ceo@bank.example>"
shows an address the email does not come from. Look-alikes are judged as what they look
like: compatibility forms (fullwidth "Ｒｅ：") and the Cyrillic and Greek letters that pass
for Latin ones ("Rе:" with a Cyrillic "е") are folded to plain Latin first.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that show nothing: zero-width space, direction marks (left-to-right,
# right-to-left, Arabic letter mark), word joiner and invisible operators, byte order
# mark, soft hyphen, Mongolian vowel separator, Hangul fillers. Pasted names carry them
# (right-to-left names often end in a mark), so they are dropped rather than refused.
_INVISIBLE = "\u00ad\u061c\u180e\u200b\u200e\u200f\u2060-\u2064\ufeff\u3164\uffa0"
# Zero-width (non-)joiners do shape text: between two visible characters they make emoji
# sequences (👩‍💻) and spell Persian and Indic words; anywhere else they show nothing.
_JOINERS = "\u200c\u200d"
_VISIBLE = rf"[^\s{_INVISIBLE}{_JOINERS}]"
_SHOWING_NOTHING = re.compile(
    rf"[{_INVISIBLE}]+|(?<!{_VISIBLE})[{_JOINERS}]+|[{_JOINERS}]+(?!{_VISIBLE})"
)

# What passes for the full stop between an address's labels ("support@paypalꓸcom"):
# Unicode's confusables for "." and for the middle dot, and the ideographic full stop.
# Folding them to "." tells only where an address is looked for, which takes an "@" with a
# domain after it: a name with a middle dot and no address ("Gal·la Puig", "ジョン・スミス")
# is kept. Unicode lists nothing for "@" beyond the fullwidth and small forms, which NFKC
# folds.
_DOTS = (
    "\U0001d16d\u0701\u0702\ua60e\U00010a50\u0660\u06f0\ua4f8"  # confusables of "."
    "\u00b7\u30fb\u16eb\u2e31\U00010101\u2022\u2027\u2219\u22c5\ua78f\u1427"  # of "·"
    "\u3002"  # ideographic full stop
)
# Letters of other scripts that pass for Latin ones in a prefix, and marks that pass for
# a colon, angle brackets or a full stop (after NFKC, which already folds the fullwidth
# and small forms: "＠", "﹫", "．", "﹒", "․", "｡", "･", Greek "·").
_LOOKALIKES = str.maketrans(
    {
        **dict(zip("АВЕЅІЈКМНОРСТУХԚԜҮ", "ABESIJKMHOPCTYXQWY", strict=True)),
        **dict(zip("аеѕіјорсухԁԛԝһӏгԍ", "aesijopcyxdqwhlrg", strict=True)),
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
        **dict(zip("αιορυνκ", "aiopuvk", strict=True)),
        **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnoprstuvwyz", strict=True)),
        **dict.fromkeys("ː˸։׃܃܄ःઃ᛬᠃᠉⁚∶ꓽ꞉", ":"),
        **dict.fromkeys("‹〈⟨˂ᐸ", "<"),
        **dict.fromkeys("›〉⟩˃ᐳ", ">"),
        **dict.fromkeys(_DOTS, "."),
    }
)
_OPENING = r"[\s\"'«“‘„(\[{<*_~-]*"
_CLOSING = r"[\s\"'»”’)\]}>*_~]*"
# What mail clients put before a reply's or a forward's subject, in the languages they
# speak, as written there (`_folded` below makes them what a name is compared in): Re,
# Fw, Fwd; AW, WG (German); TR (French); SV, VS, VB, VL (Nordic, Finnish); RV (Spanish);
# Ref, Antw, Doorst (Dutch); R, I, Rif (Italian); Res, Enc (Portuguese); Odp, PD
# (Polish); Vá, Továbbítás (Hungarian); YNT, İLT (Turkish); Отв, Пересл (Russian); ΑΠ,
# ΣΧΕΤ, ΠΡΘ (Greek); 回复, 回覆, 答复, 答覆, 转发, 轉寄, 轉發 (Chinese); 返信, 転送
# (Japanese); 회신, 전달 (Korean); רד, השב, הועבר (Hebrew, Arabic رد). With a count
# ("Re[2]:") or not.
_REPLY_WRITTEN = (
    "re",
    "fw",
    "fwd",
    "aw",
    "wg",
    "tr",
    "sv",
    "vs",
    "vb",
    "vl",
    "rv",
    "ref",
    "antw",
    "doorst",
    "r",
    "i",
    "rif",
    "res",
    "enc",
    "odp",
    "pd",
    "vá",
    "továbbítás",
    "ynt",
    "i̇lt",
    "отв",
    "пересл",
    "απ",
    "σχετ",
    "πρθ",
    "回复",
    "回覆",
    "答复",
    "答覆",
    "转发",
    "轉寄",
    "轉發",
    "返信",
    "転送",
    "회신",
    "전달",
    "השב",
    "הועבר",
    "رد",
)
# The words the platform's own reminder subjects open with, in every language it has
# (courtois.po: "Reminder: …", "The reminder you asked for: …", "Rappel : …", "Le rappel
# que vous avez demandé : …"); a test holds this list to the catalogues.
REMINDER_WORDS = frozenset({"reminder", "reminders", "rappel", "rappels"})
# What ends a subject's prefix: a colon, or a dash or bar between spaces.
_SEPARATOR = re.compile(r":|\s[-–—|]\s")
_WORD = re.compile(r"[^\W\d_]+")
# The longest prefix read as a reminder's ("Le rappel que vous avez demandé").
_PREFIX_WORDS = 6
# An address: in angle brackets, whatever it holds, or bare (local@domain.tld).
_BRACKETED = re.compile(r"<[^<>]*@[^<>]*>")
_BARE = re.compile(r"[\w.+!#$%&'*/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def drop_invisible(value: str) -> str:
    """The name without the characters that show nothing."""
    # Most names are ASCII, which holds none of them.
    return value if value.isascii() else _SHOWING_NOTHING.sub("", value)


def subject_prefix(name: str) -> str | None:
    """What the subject this name opens would read as: a reply or forward ("reply
    prefix"), a reminder ("reminder prefix"), or None when it reads as a name."""
    folded = _folded(name)
    if _REPLY.match(folded):
        return "reply prefix"
    tag = _TAG.match(folded)
    if tag:
        return "reminder prefix" if tag.group(1) in REMINDER_WORDS else "reply prefix"
    words = _WORD.findall(folded)
    if words and words[0] in {"reminder", "reminders"}:
        return "reminder prefix"  # "Reminder Ana Lima": never a name, whatever follows
    separator = _SEPARATOR.search(folded)
    if separator:
        head = _WORD.findall(folded[: separator.start()])
        if len(head) <= _PREFIX_WORDS and REMINDER_WORDS.intersection(head[:2]):
            return "reminder prefix"
    return None


def holds_address(name: str) -> bool:
    """Whether the name shows an email address, bare or in angle brackets ("Ana @ Home"
    and "@ana" are no address)."""
    folded = _folded(name)
    return "@" in folded and bool(_BRACKETED.search(folded) or _BARE.search(folded))


def _folded(name: str) -> str:
    """The name as it reads: without invisible and format characters, in compatibility
    form, look-alikes as the Latin letters and marks they pass for, without accents,
    case-folded."""
    visible = "".join(char for char in name if unicodedata.category(char) != "Cf")
    latin = unicodedata.normalize("NFKC", visible).translate(_LOOKALIKES)
    bare = "".join(
        char for char in unicodedata.normalize("NFD", latin) if not unicodedata.combining(char)
    )
    return bare.casefold()


# Folded as a name is, in both cases (an upper-case Greek or Cyrillic letter may pass for
# a Latin one where its lower case does not); longest first, so that "fwd" is tried
# before "fw" and "res" before "re".
_REPLY_FOLDED = {_folded(form) for word in _REPLY_WRITTEN for form in (word, word.upper())}
_REPLY_WORDS = "|".join(re.escape(w) for w in sorted(_REPLY_FOLDED, key=len, reverse=True))
_REPLY = re.compile(rf"{_OPENING}(?:{_REPLY_WORDS})\s*(?:\[\d+\]|\(\d+\))?{_CLOSING}:")
# A bracketed tag before the name: "[Fwd] Ana", "(Rappel) Ana".
_TAG = re.compile(rf"{_OPENING}[\[(]\s*({_REPLY_WORDS}|{'|'.join(sorted(REMINDER_WORDS))})\s*[\])]")
