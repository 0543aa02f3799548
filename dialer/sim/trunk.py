"""The simulated trunk: what the telephone network does with a dial string (manual §6.4).

A dial string is the outside-line code (``9``), then one of
* ``00`` + country code + number: international;
* the long-distance mobile prefix (``0``) + an 11-digit mobile: a mobile dialled long-distance;
* an 11-digit mobile: a mobile dialled as local;
* ``0`` + area code + number: a landline in any city;
* a 400/800 service number, dialled as it is;
* a bare subscriber number: a landline in the trunk's own area.

In strict mode (the default) the trunk fails what a real Chinese trunk fails: no outside-line
code, a mobile of another city dialled without its ``0``, a number that is not valid once read
as above (which is what happens to a long-distance landline dialled without its area code when
the bare digits are not a valid local number). A long-distance landline whose bare digits happen
to be a valid local number rings the wrong local subscriber on a real network too; the simulator
cannot tell, but its call log records the E.164 number it rang, so tests compare that.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from dialer.numbering import attribute


@dataclass(frozen=True, slots=True)
class Route:
    """The trunk's reading of a dial string: `e164` when it can be rung, else `reason`."""

    ok: bool
    e164: str = ""
    reason: str = ""


_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


@dataclass(frozen=True, slots=True)
class Trunk:
    home_area_code: str = "010"
    outside_prefix: str = "9"
    ld_mobile_prefix: str = "0"
    strict: bool = True

    def route(self, dial_string: str) -> Route:
        """Read `dial_string` as the network would."""
        if not dial_string.isascii() or not dial_string.isdigit():
            return Route(False, reason="dial string is not digits")
        if not dial_string.startswith(self.outside_prefix):
            if self.strict:
                return Route(False, reason=f"no outside-line code {self.outside_prefix!r}")
            rest = dial_string
        else:
            rest = dial_string[len(self.outside_prefix):]
        if rest.startswith("00"):
            return self._check("+" + rest[2:], "international")
        mobile_ld = self.ld_mobile_prefix + "1"
        if rest.startswith(mobile_ld) and len(rest) == len(self.ld_mobile_prefix) + 11:
            return self._check("+86" + rest[len(self.ld_mobile_prefix):], "mobile", mobile=True)
        if rest.startswith("1") and len(rest) == 11:
            route = self._check("+86" + rest, "mobile", mobile=True)
            if route.ok and self.strict and not self._is_local(route.e164):
                return Route(False, route.e164, "long-distance mobile dialled without its 0")
            return route
        if rest.startswith("0"):
            return self._check("+86" + rest[1:], "landline")
        if rest[:3] in ("400", "800") and len(rest) == 10:
            return self._check("+86" + rest, "service number")
        return self._check("+86" + self.home_area_code.lstrip("0") + rest, "local landline")

    def _is_local(self, e164: str) -> bool:
        """True when the mobile's city is the trunk's own; a mobile of unknown city passes."""
        code = attribute(phonenumbers.parse(e164)).area_code
        return not code or code == self.home_area_code

    def _check(self, e164: str, what: str, *, mobile: bool = False) -> Route:
        try:
            number = phonenumbers.parse(e164)
        except phonenumbers.NumberParseException:
            return Route(False, reason=f"not a number ({what})")
        if not phonenumbers.is_valid_number(number):
            if self.strict:
                return Route(False, e164, f"no such number ({what} {e164})")
            return Route(True, e164)
        if mobile and phonenumbers.number_type(number) not in _MOBILE_TYPES and self.strict:
            return Route(False, e164, f"not a mobile number ({e164})")
        return Route(True, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
