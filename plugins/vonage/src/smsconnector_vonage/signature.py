"""Vonage's request signature (``sig``) over a webhook's parameters, as its SDKs compute and check it.

Every parameter but ``sig`` is taken, sorted by name; ``&`` and ``=`` in a value become ``_``; each is written
``&name=value``. With ``md5hash`` the secret is appended and the whole hashed with MD5; with the HMAC methods the
secret is the key. The digest is compared as lower-case hex. The signed ``timestamp`` (Unix seconds) must be
recent, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from smsconnector.plugin import Forbidden

from .settings import SignatureMethod

SIGNATURE_PARAM = "sig"
TIMESTAMP_PARAM = "timestamp"
#: a timestamp longer than this is no Unix time of this era or the next
_MAX_TIMESTAMP_DIGITS = 12


def signature(params: Mapping[str, str], secret: str, method: SignatureMethod) -> str:
    """The lower-case hex signature of ``params`` (``sig`` among them is left out) with ``secret``."""
    signed = "".join(
        f"&{name}={value.replace('&', '_').replace('=', '_')}"
        for name, value in sorted(params.items())
        if name != SIGNATURE_PARAM
    ).encode("utf-8", "surrogatepass")
    if method == "md5hash":
        return hashlib.md5(signed + secret.encode()).hexdigest()
    return hmac.new(secret.encode(), signed, method).hexdigest()


def verify(params: Mapping[str, str], secret: str, method: SignatureMethod, *, now: float, max_age: int) -> None:
    """Check ``params``' ``sig`` and the freshness of their ``timestamp``.

    :raises Forbidden: the signature or the timestamp is missing, the signature is wrong, or the timestamp is
        further than ``max_age`` seconds from ``now``.
    """
    given = params.get(SIGNATURE_PARAM, "")
    if not given:
        raise Forbidden("the webhook is not signed (no sig parameter)")
    stamp = params.get(TIMESTAMP_PARAM, "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS):
        raise Forbidden("the webhook's signed timestamp is missing or not Unix seconds")
    if not hmac.compare_digest(
        given.lower().encode("utf-8", "surrogatepass"), signature(params, secret, method).encode()
    ):
        raise Forbidden("the webhook's signature does not match")
    if abs(now - int(stamp)) > max_age:
        raise Forbidden(f"the webhook's signed timestamp is more than {max_age} s from now")
