"""The error tree. Everything the library raises on purpose derives from `DialerError`.

The CLI turns these into one-line messages and exit codes; nothing below should ever reach a
user as a traceback.
"""

from __future__ import annotations


class DialerError(Exception):
    """Root of every error the dialer raises on purpose."""


class ProtocolError(DialerError):
    """Something is wrong with a CTI frame."""


class LocalProtocolError(ProtocolError):
    """Our own code tried to send something the protocol cannot carry (a newline in a value,
    a dial string that is not digits, an unknown command)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent a frame we cannot read. The connection survives; the frame is dropped."""


class CTIError(DialerError):
    """A seat's session with the CTI server failed."""


class ConnectionLost(CTIError):
    """The socket closed (or was declared dead) while a command was waiting for its answer."""


class CommandTimeout(CTIError):
    """A command's response did not arrive in time."""


class NotConnected(CTIError):
    """A command was issued on a seat that has no open socket."""


class LoginFailed(CTIError):
    """The server refused a login; `reason` is its `resultText`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"login refused: {reason or '(no reason given)'}")
        self.reason = reason


class ScenarioError(DialerError):
    """A simulator scenario file is malformed."""
