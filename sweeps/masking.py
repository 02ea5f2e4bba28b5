"""Connection URIs may carry passwords (``postgresql://user:secret@host/db``): everything that
``sweeps`` prints or logs goes through ``mask`` first."""

from __future__ import annotations

import re

# scheme://user:password@  ->  scheme://user:***@
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s/]*)@")
# password=... in libpq key/value strings and query parameters
_PARAM = re.compile(r"(?P<head>\bpassword=)(?P<secret>[^\s&;]+)", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with every password in a URI or ``password=`` setting replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:***@", text)
    return _PARAM.sub(lambda m: f"{m['head']}***", text)
