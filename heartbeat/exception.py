"""The one error root of heartbeat and its subclasses.

Every error raised by heartbeat is a :class:`HeartbeatError`.  Backend errors
are translated once per driver with ``raise ... from err`` so the original
cause stays attached.  Messages say what to do, not only what went wrong.
"""


class HeartbeatError(Exception):
    """Root of every heartbeat error."""


class ConfigError(HeartbeatError):
    """An option or a combination of options is invalid."""


class DriverNotFound(ConfigError):
    """No driver is registered under the configured name."""


class CapabilityMissing(ConfigError):
    """The chosen driver lacks a capability the caller requires."""


class BackendError(HeartbeatError):
    """The backend failed; the message names the backend and the operation."""


class StorageError(BackendError):
    """The shared-storage metadata area could not be read or written."""


class HostIdConflict(HeartbeatError):
    """Another live member owns the slot of the configured host_id."""


class PayloadTooLarge(HeartbeatError):
    """An encoded report does not fit into the driver's payload limit."""


class NotJoined(HeartbeatError):
    """An operation needs a member that has joined its group first."""


def describe(err: BaseException) -> str:
    """What ``err`` says, never empty.

    Some backends raise errors without text (a timeout wrapped in a
    translated error, say): then the names along the cause chain say
    what happened, down to the first one with a message.
    """
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        name = type(current).__name__
        if text:
            return text if not names else '%s: %s: %s' % (
                ' from '.join(names), name, text)
        names.append(name)
        current = current.__cause__ or current.__context__
    return '%s, without further detail' % ' from '.join(names)
