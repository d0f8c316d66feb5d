"""Secrets out of URLs before anything records them.

A download's URL goes into signed sidecars (meant to be published), the run cache
index (pushed to shared remotes) and ``show`` output. URLs often carry credentials:
``https://user:PASSWORD@host/…``, ``?api_key=…``, ``?token=…``, a presigned S3 URL's
``X-Amz-Signature``/``X-Amz-Credential``/``X-Amz-Security-Token``, an Azure SAS
``sig``. :func:`redact_url` replaces those values with ``REDACTED`` and keeps
everything else byte for byte; the digest of the body still identifies the download.

It is applied where a :class:`~sharklib.model.Download` or a git remote is built, so
every recorder (requests, urllib, httpx, fsspec, the trace proxy) and every record
read back goes through it, whoever made it. Pure string work: no I/O, no imports at
start-up beyond what a URL needs.
"""

from __future__ import annotations

import re

REDACTED = "REDACTED"

#: query/fragment parameter names whose value is a credential (compared lower-cased, with
#: ``-`` read as ``_``); names ending in one of :data:`_SECRET_SUFFIXES` count too
_SECRET_NAMES = frozenset({
    "api_key", "apikey", "key", "token", "access_token", "accesstoken", "refresh_token",
    "id_token", "auth", "auth_token", "authorization", "bearer", "client_secret", "secret",
    "password", "passwd", "pwd", "pass", "sig", "signature", "code", "session", "sessionid",
    "x_amz_signature", "x_amz_credential", "x_amz_security_token",
    "x_goog_signature", "x_goog_credential", "awsaccesskeyid", "googleaccessid",
    "private_token", "personal_access_token", "jwt",
})
_SECRET_SUFFIXES = ("_token", "_key", "_secret", "_password", "_signature", "_sig",
                    "_credential", "apikey", "accesskey")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def secret_param(name: str) -> bool:
    """Is a query parameter of this name a credential (``api_key``, ``X-Amz-Signature``…)?"""
    n = name.strip().lower().replace("-", "_")
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def _redact_params(text: str) -> str:
    parts = text.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value and value != REDACTED:
            from urllib.parse import unquote_plus

            if secret_param(unquote_plus(name)):
                parts[i] = f"{name}={REDACTED}"
                changed = True
    return "&".join(parts) if changed else text


def redact_url(url: str) -> str:
    """``url`` with its password (or lone user name) and credential parameters replaced.

    ``https://me:pw@host/f?api_key=k&x=1`` → ``https://me:REDACTED@host/f?api_key=REDACTED&x=1``.
    Over http(s) a user name alone (``https://TOKEN@github.com/…``, as git and many APIs
    take a token) is a credential too. Anything that is not a ``scheme://`` URL is returned unchanged, as
    is a URL with nothing to hide (same object: callers may compare with ``is``).
    """
    if not isinstance(url, str) or not _SCHEME.match(url):
        return url
    scheme_end = url.index("://") + 3
    rest = url[scheme_end:]
    # the authority ends at the first '/', '?' or '#'
    end = len(rest)
    for sep in "/?#":
        j = rest.find(sep)
        if j != -1 and j < end:
            end = j
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if colon and password != REDACTED:
            authority = f"{user}:{REDACTED}@{host}"
        elif not colon and user and user != REDACTED and "http" in url[:scheme_end].lower():
            # over http(s) a lone user name is how tokens travel; `ssh://git@host` is not one
            authority = f"{REDACTED}@{host}"
    path, hash_, fragment = tail.partition("#")
    path, q, query = path.partition("?")
    if query:
        query = _redact_params(query)
    if fragment and "=" in fragment:
        fragment = _redact_params(fragment)
    out = url[:scheme_end] + authority + path + q + query + hash_ + fragment
    return url if out == url else out


#: a ``scheme://`` URL inside a longer text (a shell command line, ``--url=…``): it ends at
#: white space or a quote, as a shell would end the word
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`<>]+")


def redact_text(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every URL in it (same object if none)."""
    if not isinstance(text, str) or "://" not in text:
        return text
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return text if out == text else out


#: an HTTP header carrying a credential, as ``curl -H``/``wget --header``/``http`` take it:
#: ``Authorization: Bearer TOKEN``, ``X-API-Key: K``, ``Cookie: session=S``. The value ends at
#: a quote or the end of the text (a header value may hold spaces: ``Basic dXNl...``)
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization|cookie|[A-Za-z][A-Za-z0-9-]*)"
                     r"(\s*:[ \t]*)((?:bearer|basic|token|digest)[ \t]+)?([^'\"\n]+)")
#: ``--password=VALUE``, ``--api-key VALUE`` (the option's value is the next word)
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9_-]*)(=|[ \t]+)([^\s'\"]+)")
#: option names whose value is a credential: narrower than query parameter names, since
#: ``--key 2`` (sort) or ``--code x`` are not secrets
_SECRET_OPTIONS = frozenset({
    "password", "passwd", "token", "api_key", "apikey", "access_token", "auth_token",
    "secret", "client_secret", "private_token", "personal_access_token", "bearer",
})
_SECRET_OPTION_SUFFIXES = ("_token", "_secret", "_password", "_passwd", "apikey", "api_key")


def _secret_header(name: str) -> bool:
    n = name.lower().replace("-", "_")
    return n in ("authorization", "proxy_authorization", "cookie") or secret_param(n)


def _secret_option(name: str) -> bool:
    n = name.lstrip("-").lower().replace("-", "_")
    return n in _SECRET_OPTIONS or n.endswith(_SECRET_OPTION_SUFFIXES)


def _redact_header(m: re.Match[str]) -> str:
    if not _secret_header(m.group(1)) or m.group(4).strip() == REDACTED:
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}"


def _redact_option(m: re.Match[str]) -> str:
    if not _secret_option(m.group(1)) or m.group(3) == REDACTED or \
            (m.group(2) != "=" and m.group(3).startswith("-")):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def redact_word(text: str) -> str:
    """One argument (or a shell line) with URLs, credential headers and options redacted."""
    if not isinstance(text, str):
        return text
    out = redact_text(text)
    if ":" in out:
        out = _HEADER.sub(_redact_header, out)
    if "-" in out:
        out = _OPTION.sub(_redact_option, out)
    return text if out == text else out


def redact_argv(argv: list[str]) -> list[str]:
    """A command line as it may be recorded: credentials in its arguments redacted.

    ``python fetch.py https://me:pw@host/x?api_key=k`` is recorded (statement, index,
    ledger, ``show``/``log``) as ``… https://me:REDACTED@host/x?api_key=REDACTED``;
    ``curl -H 'Authorization: Bearer T'`` as ``… 'Authorization: Bearer REDACTED'``;
    ``tool --password P`` / ``--api-key=K`` as ``--password REDACTED``. The program itself
    still gets its real arguments. Same list if nothing changes.
    """
    out = [redact_word(a) for a in argv]
    # an option and its value as two words: ``--password P``
    for i in range(1, len(out)):
        prev = out[i - 1]
        if isinstance(prev, str) and prev.startswith("-") and "=" not in prev \
                and _secret_option(prev) and isinstance(out[i], str) \
                and not out[i].startswith("-"):
            out[i] = REDACTED
    return argv if all(a is b for a, b in zip(out, argv, strict=True)) else out
