"""Who may cause what: Ed25519 signatures on the CloudEvents that cross the broker.

The agent signs every event it sends (triggers, escalations) with its key, at send time (each
delivery attempt: a retried trigger is fresh and keeps its id). The functions verify a trigger
with the agent's public keys and sign their result events with their own key; the agent verifies
results and dead-letter deliveries. Asymmetric keys: a function's credentials cannot mint a
trigger, and nobody who can only post to the broker can forge either.

What is signed is ``canonical(event)``: the JSON object ``{"data", "function", "id", "source",
"time", "type"}`` with sorted keys, no spaces, ASCII-only (``\\uXXXX`` escapes), where ``data`` is
the event's JSON data, ``function`` the ``lambdafunction`` extension (null when absent) and
``time`` the event time in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The signature (base64url,
no padding) and the signing key's id travel as the extension attributes ``signature`` and
``signaturekeyid``; other extensions (``correlationid``, Knative's ``knativeerror*``) are not
covered. docs/DESIGN.md "Signed events" is the specification.

A key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key. A ``KeyRing``
holds at most two public keys, so a key can be rotated: trust the new and the old one, switch
the signer, then drop the old one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import ce
from .ce import CloudEvent

SIGNATURE = "signature"
KEY_ID = "signaturekeyid"
DEFAULT_MAX_AGE_S = 300.0
# A signed time this far ahead of our clock is refused: clocks drift, but not by minutes.
FUTURE_SKEW_S = 60.0
MAX_KEYS = 2


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file."""


class Refused(Exception):
    """An event this side will not act on: ``status`` 401 (not authenticated: no, bad or unknown
    signature) or 403 (authenticated but not allowed: stale, replayed, policy), 4xx for input
    that is not usable; ``reason`` is a short metric label."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key and its id."""

    private: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SigningKey":
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            raise KeyFileError(f"{path}: not a readable unencrypted PEM private key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 key")
        return cls(key)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def id(self) -> str:
        return key_id(self.public)

    def pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


class KeyRing:
    """The public keys one side accepts (at most two: the current and, while rotating, the next
    or the previous one), by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = (), *, limit: int | None = MAX_KEYS):
        self.keys: dict[str, Ed25519PublicKey] = {key_id(k): k for k in keys}
        if limit is not None and len(self.keys) > limit:
            raise KeyFileError(f"{len(self.keys)} public keys given; at most {limit} are valid at once "
                               "(the current one and the one being rotated in or out)")

    @classmethod
    def load(cls, spec: str) -> "KeyRing":
        """Keys from a comma-separated list of PEM files, or a directory whose ``*.pem`` files are
        read (a mounted Secret: its ``..data`` links and dot files are skipped)."""
        return cls(load_public(p) for p in public_key_files(spec))

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, kid: str) -> bool:
        return kid in self.keys

    def union(self, *others: "KeyRing") -> "KeyRing":
        """Several rings together (the agent's dead-letter check trusts its own keys and the
        functions'); the two-key limit applies to each ring, not to the union."""
        keys = dict(self.keys)
        for o in others:
            keys.update(o.keys)
        return KeyRing(keys.values(), limit=None)

    def verify(self, kid: str, signature: bytes, message: bytes) -> bool:
        key = self.keys.get(kid)
        if key is None:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def public_key_files(spec: str) -> list[Path]:
    out: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        p = Path(part)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix == ".pem" and not f.name.startswith(".")
                          and f.is_file())
        else:
            out.append(p)
    if not out:
        raise KeyFileError(f"{spec!r} names no public key file (a .pem file, or a directory of them)")
    return out


def load_public(path: str | os.PathLike) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as e:
        raise KeyFileError(f"{path}: not a readable PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key


# ---------------------------------------------------------------------------------- canonical form
def canonical_time(t: Any) -> str:
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise ce.CloudEventError("the event has no usable time attribute")
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, no spaces, ASCII only, no NaN/Infinity: the same bytes on both sides."""
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")
    except (ValueError, TypeError, RecursionError) as e:
        raise ce.CloudEventError(f"event data has no canonical JSON form: {e}") from None


def canonical(event: CloudEvent) -> bytes:
    """The bytes a signature covers (see the module docstring)."""
    attrs = event.get_attributes()
    return canonical_json({
        "data": ce.data_of(event),
        "function": attrs.get("lambdafunction"),
        "id": event.get_id(),
        "source": event.get_source(),
        "time": canonical_time(attrs.get("time")),
        "type": event.get_type(),
    })


def b64(sig: bytes) -> str:
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(event: CloudEvent, key: SigningKey, *, now: float | None = None) -> CloudEvent:
    """A copy of ``event`` with ``time`` set to now and the signature extensions added."""
    attrs = {k: v for k, v in event.get_attributes().items() if k not in (SIGNATURE, KEY_ID)}
    attrs["time"] = datetime.fromtimestamp(_time.time() if now is None else now, timezone.utc)
    unsigned = CloudEvent(attributes=attrs, data=event.get_data())
    attrs = dict(attrs)
    attrs[SIGNATURE] = b64(key.sign(canonical(unsigned)))
    attrs[KEY_ID] = key.id
    return CloudEvent(attributes=attrs, data=event.get_data())


def verify(event: CloudEvent, ring: KeyRing, *, max_age_s: float | None = DEFAULT_MAX_AGE_S,
           now: float | None = None) -> str:
    """Check ``event``'s signature against ``ring`` and, with ``max_age_s``, its freshness.
    Returns the key id; raises Refused (401 unsigned/bad-signature/unknown-key, 403 stale/future)."""
    attrs = event.get_attributes()
    sig, kid = attrs.get(SIGNATURE), attrs.get(KEY_ID)
    if not sig or not kid:
        raise Refused(401, "unsigned", f"the event carries no {SIGNATURE}/{KEY_ID} extension; only signed "
                      "events are accepted")
    if str(kid) not in ring:
        raise Refused(401, "unknown-key", f"signed by key {str(kid)[:32]!r}, which is not trusted here")
    try:
        raw = unb64(str(sig))
        message = canonical(event)
    except (binascii.Error, ValueError) as e:
        raise Refused(401, "bad-signature", f"signature unusable: {e}") from None
    if len(raw) != 64 or not ring.verify(str(kid), raw, message):
        raise Refused(401, "bad-signature", "the signature does not match the event (id, type, source, time, "
                      "function and data are covered)")
    if max_age_s is not None:
        signed_at = datetime.fromisoformat(canonical_time(attrs.get("time")).replace("Z", "+00:00")).timestamp()
        age = (_time.time() if now is None else now) - signed_at
        if age > max_age_s:
            raise Refused(403, "stale", f"signed {age:.0f}s ago; events older than {max_age_s:g}s are refused")
        if age < -FUTURE_SKEW_S:
            raise Refused(403, "future", f"signed {-age:.0f}s in the future (clock skew over {FUTURE_SKEW_S:g}s)")
    return str(kid)


@dataclass(frozen=True)
class Trust:
    """One side's keys: ``key`` signs what it sends, ``peers`` verify what it receives."""

    key: SigningKey | None
    peers: KeyRing
    max_age_s: float = DEFAULT_MAX_AGE_S

    def sign(self, event: CloudEvent) -> CloudEvent:
        return sign(event, self.key) if self.key is not None else event

    def verify(self, event: CloudEvent, *, max_age: bool = True) -> str:
        return verify(event, self.peers, max_age_s=self.max_age_s if max_age else None)


def pair(max_age_s: float = DEFAULT_MAX_AGE_S) -> tuple[Trust, Trust]:
    """Two fresh key pairs that trust each other: (the agent's side, the functions' side). The
    embedded broker uses them, so the demo signs and verifies like a cluster does."""
    agent, functions = SigningKey.generate(), SigningKey.generate()
    return (Trust(agent, KeyRing([functions.public]), max_age_s),
            Trust(functions, KeyRing([agent.public]), max_age_s))


# ---------------------------------------------------------------------------------- from settings
def key_setting(var: str, path: str | os.PathLike) -> SigningKey:
    """``SigningKey.load`` for a setting: a SettingsError names the variable."""
    from .settings import SettingsError

    try:
        return SigningKey.load(path)
    except KeyFileError as e:
        raise SettingsError(f"{var}={str(path)!r}: {e}") from None


def ring_setting(var: str, spec: str) -> KeyRing:
    """``KeyRing.load`` for a setting: a SettingsError names the variable."""
    from .settings import SettingsError

    try:
        return KeyRing.load(spec)
    except KeyFileError as e:
        raise SettingsError(f"{var}={spec!r}: {e}") from None


def content_digest(event: CloudEvent) -> str:
    """SHA-256 of what an event says, without its time: the same for every delivery attempt of
    one trigger (each is signed anew), different for other content under the same id."""
    attrs = event.get_attributes()
    return hashlib.sha256(canonical_json({
        "data": ce.data_of(event), "function": attrs.get("lambdafunction"), "id": event.get_id(),
        "source": event.get_source(), "type": event.get_type()})).hexdigest()
