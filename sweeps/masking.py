"""Connection URIs may carry passwords (``postgresql://user:secret@host/db``): everything that
``sweeps`` prints or logs goes through ``mask`` first.

A URI's password is found by reading the URI, not by a pattern over the text: everything
between the user's ``:`` and the *last* ``@`` before the host is the password, so one that holds
``/``, ``@`` or ``:`` (as ``${VAR}`` expansion writes it, unencoded) is masked whole. The scan
is linear in the text's length (a 10 MB line takes about a tenth of a second).
"""

from __future__ import annotations

import re

# password=... in libpq key/value strings and query parameters
_PARAM = re.compile(r"(?P<head>\bpassword=)(?P<secret>[^\s&;]+)", re.IGNORECASE)
_TOKEN = re.compile(r"\S+")
_SCHEME_MAX = 32  # "postgresql+psycopg" and the like; a longer run of letters is no scheme
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def mask(text: str) -> str:
    """``text`` with every password in a URI or ``password=`` setting replaced by ``***``."""
    if "://" in text:
        text = _TOKEN.sub(lambda m: _mask_uri(m.group()), text)
    if "=" in text:
        text = _PARAM.sub(lambda m: f"{m['head']}***", text)
    return text


def _mask_uri(token: str) -> str:
    """A whitespace-free token with each ``scheme://user:password@host`` in it masked."""
    out, start, last_at = [], 0, token.rfind("@")
    while (mark := token.find("://", start)) != -1:
        begin, floor = mark, max(start, mark - _SCHEME_MAX)
        while begin > floor and token[begin - 1] in _SCHEME_CHARS:
            begin -= 1
        while begin < mark and not token[begin].isalpha():  # "--postgresql", "3-http"
            begin += 1
        if begin == mark:  # no scheme before "://"
            out.append(token[start : mark + 3])
            start = mark + 3
            continue
        rest = mark + 3
        end = _uri_end(token, rest, last_at)
        at = token.rfind("@", rest, end)  # a password may hold "@", "/", "?": mask past them
        colon = token.find(":", rest, at) if at != -1 else -1
        if colon == -1:
            out.append(token[start:end])
        else:
            out.append(f"{token[start:colon]}:***{token[at:end]}")
        start = end
    out.append(token[start:])
    return "".join(out)


def _uri_end(token: str, rest: int, last_at: int) -> int:
    """Where the URI whose authority starts at ``rest`` ends: at the next URI's scheme, unless
    that "://" lies inside this one's password (a ``:`` before it, no ``@`` before it and one
    after it). Each character is read a bounded number of times."""
    following = token.find("://", rest)
    if following != -1 and following < last_at:
        if token.find(":", rest, following) != -1 and token.find("@", rest, following) == -1:
            following = token.find("://", token.find("@", following))  # inside the password
    if following == -1:
        return len(token)
    end, floor = following, max(rest, following - _SCHEME_MAX)
    while floor < end and token[end - 1] in _SCHEME_CHARS:
        end -= 1  # the next URI starts at its scheme
    return end


MESSAGE_LIMIT = 1000  # characters of one message line: a 100 KB cell made a 100 KB error line


def shown(text: str) -> str:
    """What may be printed or stored as a reason: passwords masked, each line bounded."""
    return clip(mask(text))


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Each line of ``text`` at most ``limit`` characters: its start (the field, the file) and
    its end kept, the middle replaced by how much was cut."""
    return "\n".join(_clip_line(line, limit) for line in text.split("\n"))


def _clip_line(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    head = limit * 2 // 3
    tail = max(0, limit - head - 40)
    cut = len(line) - head - tail
    return f"{line[:head]} ... [{cut:,} characters cut] ... {line[len(line) - tail :]}"
