"""The names the consortium CA writes into certificates and the only ones the product accepts.

A distinguished-name attribute (CN, O, OU) is refused unless it

- holds 1 to 64 characters (Unicode code points): RFC 5280's upper bounds ``ub-common-name``,
  ``ub-organization-name`` and ``ub-organizational-unit-name``;
- holds no control or invisible character: C0 controls U+0000–U+001F, DEL U+007F, C1 controls
  U+0080–U+009F, the line and paragraph separators U+2028/U+2029, the bidirectional controls
  U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069, and the zero-width U+200B–U+200D,
  U+2060, U+FEFF;
- holds none of the characters that RFC 4514 escapes when a DN is printed (``,`` ``+`` ``"``
  ``\\`` ``<`` ``>`` ``;`` ``=``), does not start with ``#`` and neither starts nor ends with
  white space.

So a printed name (``CN=…, O=…, OU=…`` with or without RFC 4514 escaping) reads one way only.
The sets are fixed code points, not Unicode categories, so every node decides alike whatever
its Python's Unicode version. An accepted certificate's subject and issuer also hold each
attribute type at most once, in single-valued RDNs (no ``CN=a+CN=b``, no second CN that one
reader would take and another skip).
"""

from __future__ import annotations

from collections.abc import Iterable

from asn1crypto import x509

from .errors import InvalidName

MAX_NAME = 64
# the CA derives "<consortium> Root CA" and "<consortium> Transport CA" from the consortium name
MAX_CONSORTIUM_NAME = MAX_NAME - len(" Transport CA")

_INVISIBLE = frozenset(
    [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x061C, 0x200E, 0x200F,
     *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]
)
_DN_SPECIAL = frozenset(',+"\\<>;=')


def check_name(value: str, what: str, limit: int = MAX_NAME) -> str:
    """``value`` when it is a usable name attribute, else :class:`InvalidName` saying why."""
    if not isinstance(value, str):
        raise InvalidName(f"{what} is not text")
    if not value:
        raise InvalidName(f"{what} is empty")
    if len(value) > limit:
        raise InvalidName(f"{what} has {len(value)} characters; at most {limit} are allowed")
    for ch in value:
        if ord(ch) in _INVISIBLE or 0xD800 <= ord(ch) <= 0xDFFF:
            raise InvalidName(f"{what} holds the control or invisible character U+{ord(ch):04X}")
        if ch in _DN_SPECIAL:
            raise InvalidName(f"{what} holds {ch!r}, which makes a printed distinguished name ambiguous")
    if value[0] == "#":
        raise InvalidName(f"{what} starts with '#', which makes a printed distinguished name ambiguous")
    if value != value.strip():
        raise InvalidName(f"{what} starts or ends with white space")
    return value


def _attributes(name: x509.Name) -> Iterable[tuple[str, object]]:
    for rdn in name.chosen:
        if len(rdn) != 1:
            raise InvalidName("a multi-valued RDN (A=x+B=y) in a certificate name")
        atv = rdn[0]
        yield str(atv["type"].native), atv["value"].native


def check_certificate_name(name: x509.Name, what: str) -> None:
    """Every attribute of a certificate's subject or issuer ``name`` as :func:`check_name`
    requires, each attribute type at most once."""
    seen: set[str] = set()
    for kind, value in _attributes(name):
        if kind in seen:
            raise InvalidName(f"the {what} name holds {kind} twice")
        seen.add(kind)
        if isinstance(value, str):
            check_name(value, f"the {what} name's {kind}")
