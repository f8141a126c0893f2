"""Re-reading the configuration of a running broker (SIGHUP).

:class:`ConfigReloader` first parses the config files into a fresh
``ConfigOpts`` and checks every value; a file that cannot be read or holds
an invalid value is refused as a whole and the running options stay as
they were.  Only then are the files applied with
``ConfigOpts.mutate_config_files()``: options declared ``mutable=True``
take their new values (the broker reads them live), and every other option
whose value in the files differs from the running one is reported as
needing a restart.  :func:`option_values` and :func:`changed_names` are the
pure part and are tested without files.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import time
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import exception

LOG = logging.getLogger(__name__)

#: (group name, options of that group), as ``list_opts()`` gives them.
Area = tuple[str, Sequence[cfg.Opt]]


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    """What one reload changed.

    ``applied``: mutable options whose value changed and is now in use.
    ``restart_needed``: options whose new value in the files is ignored
    until the daemon restarts.  Both hold ``group.option`` names only, never
    values (some options are secrets).
    """

    applied: tuple[str, ...]
    restart_needed: tuple[str, ...]


def option_values(conf: cfg.ConfigOpts, areas: Iterable[Area],
                  mutable: bool | None = None) -> dict[str, Any]:
    """Values of the options of ``areas`` registered on ``conf``.

    ``mutable`` selects the mutable (True) or the other (False) options;
    None takes both.  Reading a value validates it: a bad value in a file
    raises ``cfg.ConfigFileValueError`` here.
    """
    out: dict[str, Any] = {}
    for group, opts in areas:
        if group not in conf:
            continue
        section = conf[group]
        for opt in opts:
            if mutable is not None and opt.mutable != mutable:
                continue
            if opt.dest not in section:
                continue
            out['%s.%s' % (group, opt.dest)] = getattr(section, opt.dest)
    return out


def changed_names(before: Mapping[str, Any],
                  after: Mapping[str, Any]) -> tuple[str, ...]:
    """Sorted names whose value differs (or that exist on one side only)."""
    names = set(before) | set(after)
    return tuple(sorted(n for n in names
                        if before.get(n) != after.get(n)
                        or (n in before) != (n in after)))


def config_args(conf: cfg.ConfigOpts) -> list[str]:
    """Command line naming the config files and dirs ``conf`` was read from."""
    args: list[str] = []
    for path in conf.config_file or ():
        args += ['--config-file', path]
    for path in conf.config_dir or ():
        args += ['--config-dir', path]
    return args


def drop_cached_values(conf: cfg.ConfigOpts) -> None:
    """Forget the values ``conf`` cached, so the next reads see the files.

    ``mutate_config_files()`` empties the cache before it parses the files
    and installs their values only afterwards: a thread that reads an
    option in between caches the old value, and keeps reading it after the
    reload.  The daemons read their options live from many threads, so a
    reload empties the cache again once the new values are installed.
    oslo.config has no public call for this; the name is that of its
    private cache.
    """
    cache = getattr(conf, '_ConfigOpts__cache', None)
    if isinstance(cache, dict):
        cache.clear()


#: Times a reload empties the cache before it gives up on a reader that
#: keeps caching an old value (only a thread stalled between reading the
#: old values and caching them can do that).
SETTLE_TRIES = 5


def refused(err: Exception) -> exception.ConfigError:
    """The error of a reload that was refused because of ``err``."""
    return exception.ConfigError(
        'The configuration files were not reloaded (%s). Fix them and send '
        'SIGHUP again; the running options are unchanged.'
        % str(err).rstrip('.'))


class ConfigReloader:
    """Re-reads ``conf``'s config files in place; see the module docstring.

    ``register`` registers on a fresh ``ConfigOpts`` every option the
    daemon reads (so the files can be checked before they are applied);
    ``areas`` lists the options compared for "restart needed";
    ``validate`` checks option combinations (raising ConfigError).
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 register: Callable[[cfg.ConfigOpts], None],
                 areas: Callable[[], Iterable[Area]],
                 validate: Callable[[cfg.ConfigOpts], None] | None = None
                 ) -> None:
        self.conf = conf
        self.register = register
        self.areas = areas
        self.validate = validate

    def reread(self) -> cfg.ConfigOpts:
        """The config files parsed afresh and checked; ConfigError if bad."""
        fresh = cfg.ConfigOpts()
        self.register(fresh)
        args = config_args(self.conf)
        try:
            fresh(args, project=self.conf.project, prog=self.conf.prog,
                  default_config_files=[], default_config_dirs=[])
            option_values(fresh, self.areas())
            if self.validate is not None:
                self.validate(fresh)
        except (cfg.Error, exception.ConfigError) as err:
            raise refused(err) from err
        return fresh

    def reload(self) -> ReloadResult:
        """Check the files, apply the mutable options, report the rest."""
        fresh = self.reread()
        areas = list(self.areas())
        before = option_values(self.conf, areas, mutable=True)
        try:
            self.conf.mutate_config_files()
        except cfg.Error as err:
            raise refused(err) from err
        wanted = option_values(fresh, areas, mutable=True)
        for _ in range(SETTLE_TRIES):
            drop_cached_values(self.conf)
            after = option_values(self.conf, areas, mutable=True)
            if after == wanted:
                break
            time.sleep(0.001)
        applied = changed_names(before, after)
        restart_needed = changed_names(
            option_values(self.conf, areas, mutable=False),
            option_values(fresh, areas, mutable=False))
        for name in restart_needed:
            LOG.warning('Option %s changed in the configuration files but '
                        'cannot change at run time: restart needed to use '
                        'the new value.', name)
        return ReloadResult(applied, restart_needed)
