"""What free text sent to the API may hold: the one check behind every free-text input field.

Pure functions (no I/O). Each returns the problem as a sentence for the field's error list, or
None when the text is acceptable:

- No control characters, except tab, newline and carriage return: a NUL byte or an escape
  sequence is never part of a note, and would be stored and shown to ER staff as it came.
- In the patient condition's free text (the chief complaint and the note), no identifiers: the
  API promises the condition holds none (docs/api.md). A 주민등록번호 (resident registration
  number, ``YYMMDD-GNNNNNN`` with or without the hyphen) and a Korean phone number (mobile,
  landline or VoIP, national or ``+82``, with hyphens, dots, spaces or none) are refused.
  Numbers a clinical note holds (blood pressure ``120/80``, times, dates, doses, scores) are
  short or shaped otherwise and are not mistaken for them.
"""

import re

# C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# YYMMDD (month 01-12, day 01-31: the date part is checked loosely), an optional hyphen (or
# " - "), the gender/century digit (1-8 for Koreans and foreign residents born in the 1900s and
# 2000s, 9 and 0 for the 1800s) and six digits; not inside a longer run of digits.
_RESIDENT_NUMBER = re.compile(
    r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[0-9]\d{6}(?!\d)"
)
# A national number starts with 0 (or +82, which stands for it, optionally followed by the 0);
# then a mobile prefix (10, 11, 16-19), Seoul's 2, another area code (31-64) or VoIP's 70, an
# optional ")" as in "(02)123-4567", a 3- or 4-digit exchange and 4 digits, each optionally
# after one separator.
_PHONE_NUMBER = re.compile(
    r"(?<![\d+])(?:\+82[\s.-]?\(?0?|\(?0)(?:1[016-9]|2|[3-6][1-5]|70)\)?[\s.-]?\d{3,4}[\s.-]?\d{4}(?!\d)"
)

CONTROL_CHARACTER_PROBLEM = "Must not contain control characters (only tab and newline)."
IDENTIFIER_PROBLEM = (
    "Looks like a resident registration number or a phone number: identifiers must not be "
    "entered here."
)


def control_character_problem(text: str) -> str | None:
    """Whether ``text`` holds a control character other than tab, newline or carriage return."""
    return CONTROL_CHARACTER_PROBLEM if _CONTROL.search(text) else None


def identifier_problem(text: str) -> str | None:
    """Whether ``text`` holds something shaped like a 주민등록번호 or a Korean phone number."""
    if _RESIDENT_NUMBER.search(text) or _PHONE_NUMBER.search(text):
        return IDENTIFIER_PROBLEM
    return None


def text_problem(text: str, *, identifiers: bool = True) -> str | None:
    """The first problem of ``text`` as free text of the patient condition (``identifiers``:
    also refuse identifiers), or None."""
    return control_character_problem(text) or (identifier_problem(text) if identifiers else None)
