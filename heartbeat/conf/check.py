"""Find what the config files say that no option reads, and say it plainly.

oslo.config ignores an option or a section it does not know, so a typo
(``report_intervall``, ``[hearbeat]``) silently leaves the default in
force.  :func:`check_files` reads the files a parsed ``ConfigOpts`` was
given (``--config-file`` and ``--config-dir``, with oslo.config's own
parser) and compares them with the options known at that moment.

Known are the options registered on ``conf`` *and* every option that
heartbeat and oslo.log declare (their ``oslo.config.opts`` entry points)
or that oslo.service's launcher registers: one heartbeat.conf serves every
command of a host, and a command that does not read the ``[agent]``
section must not call it unknown.  A misspelling is unknown to all of
them.

:func:`describe` turns oslo.config's errors, whose text carries a
``LocationInfo(...)`` repr, into ``[section] option in FILE: reason``.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import difflib
import glob
from importlib import metadata
import os
import re

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from heartbeat import exception

LOG = logging.getLogger(__name__)

#: ``oslo.config.opts`` entry points whose options any command may meet
#: (oslo.config registers its own options on every ConfigOpts).
KNOWN_SOURCES = ('heartbeat', 'oslo.log')

DEFAULT = 'DEFAULT'

Known = dict[str, set[str]]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One section or option of a config file that nothing reads."""

    path: str
    section: str
    #: None when the whole section is unknown.
    option: str | None
    #: A known name close to the unknown one, if any.
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = ''
        if self.suggestion is not None:
            hint = ' (did you mean %s?)' % self.suggestion
        if self.option is None:
            return '[%s] in %s: unknown section%s' % (
                self.section, self.path, hint)
        return '[%s] %s in %s: unknown option%s' % (
            self.section, self.option, self.path, hint)


def _norm_section(name: str) -> str:
    # oslo.config matches section names case-insensitively, DEFAULT aside.
    return name if name == DEFAULT else name.lower()


def _norm_option(name: str) -> str:
    return name.replace('-', '_')


def config_files(conf: cfg.ConfigOpts) -> list[str]:
    """The files ``conf`` was parsed from, in oslo.config's order."""
    files = list(conf.config_file or [])
    dirs = conf.config_dir or []
    if isinstance(dirs, str):
        dirs = [dirs]
    for directory in dirs:
        files.extend(sorted(glob.glob(os.path.join(directory, '*.conf'))))
    return files


def parse(path: str) -> dict[str, dict[str, list[str]]]:
    """Sections of ``path`` as oslo.config reads them: name -> values."""
    sections: dict[str, dict[str, list[str]]] = {}
    cfg.ConfigParser(path, sections).parse()
    return sections


def _add(known: Known, group: str | None, names: Iterable[str]) -> None:
    known.setdefault(_norm_section(group or DEFAULT), set()).update(
        _norm_option(n) for n in names)


def _declared(known: Known, group: object, opts: Iterable[cfg.Opt]) -> None:
    if isinstance(group, cfg.OptGroup):
        group = group.name
    name = group if isinstance(group, str) else None
    for opt in opts:
        _add(known, name, [opt.dest, opt.name])
        for old in opt.deprecated_opts:
            _add(known, old.group or name, [old.name] if old.name else [])


def _registered(known: Known, conf: cfg.ConfigOpts) -> None:
    for name in conf:
        try:
            attr = conf[name]
        except cfg.Error:
            attr = None   # an option whose value is bad: still known
        if isinstance(attr, cfg.ConfigOpts.GroupAttr):
            _add(known, name, attr)
        else:
            _add(known, None, [name])


def known_options(conf: cfg.ConfigOpts) -> Known:
    """Section -> option names that something reads (see module doc)."""
    known: Known = {DEFAULT: set()}
    _registered(known, conf)
    # oslo.service's entry point imports its service module, which picks
    # an oslo.service backend: register its options on a scratch object
    # instead, as the launcher does.
    scratch = cfg.ConfigOpts()
    service_opts.register_service_opts(scratch)
    _registered(known, scratch)
    for point in metadata.entry_points(group='oslo.config.opts'):
        if point.name not in KNOWN_SOURCES:
            continue
        for group, opts in point.load()():
            _declared(known, group, opts)
    return known


def _suggest(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return close[0] if close else None


def unknown(conf: cfg.ConfigOpts, known: Known | None = None
            ) -> list[Finding]:
    """Every unknown section and option of ``conf``'s config files."""
    if known is None:
        known = known_options(conf)
    findings: list[Finding] = []
    for path in config_files(conf):
        for section, values in parse(path).items():
            names = known.get(_norm_section(section))
            if names is None:
                near = _suggest(section, [k for k in known if k != DEFAULT])
                findings.append(Finding(path, section, None, near and (
                    '[%s]' % near)))
                continue
            for option in values:
                if _norm_option(option) not in names:
                    findings.append(Finding(path, section, option,
                                            _suggest(option, names)))
    return findings


def check_files(conf: cfg.ConfigOpts, strict: bool = False) -> list[Finding]:
    """Warn about every unknown section and option; refuse them if strict.

    Call it once the command has registered every option it reads.
    Returns the findings (each logged as a warning).  With ``strict``,
    raises :class:`~heartbeat.exception.ConfigError` with one line naming
    them all.
    """
    findings = unknown(conf)
    if strict and findings:
        raise exception.ConfigError(
            'unknown configuration (refused by --strict-config): %s'
            % '; '.join(str(f) for f in findings))
    for finding in findings:
        LOG.warning('%s; it is ignored.', finding)
    return findings


def check_values(conf: cfg.ConfigOpts) -> None:
    """Read every registered option the files set; refuse a bad value.

    Raises :class:`~heartbeat.exception.ConfigError` reading
    ``[section] option in FILE: reason`` for the first value that does
    not convert, before a command acts on any of them.
    """
    for path in config_files(conf):
        for section, values in parse(path).items():
            for option in values:
                _read(conf, section, option)


def _read(conf: cfg.ConfigOpts, section: str, option: str) -> None:
    name = _norm_option(option)
    try:
        if section == DEFAULT:
            if name in conf:
                _ = conf[name]
            return
        group = _norm_section(section)
        if group in conf:
            attr = conf[group]
            if isinstance(attr, cfg.ConfigOpts.GroupAttr) and name in attr:
                _ = getattr(attr, name)
    except cfg.ConfigSourceValueError as err:
        raise exception.ConfigError(describe(err, section)) from None


_LOCATED = re.compile(
    r"^Value for option (?P<option>\S+) from LocationInfo\(.*?"
    r"detail='(?P<path>[^']*)'\) is not valid: (?P<reason>.*)$", re.S)
_LOCATION = re.compile(r"LocationInfo\(.*?detail='(?P<path>[^']*)'\)", re.S)


def describe(err: cfg.Error, section: str | None = None) -> str:
    """``err``'s text without oslo.config's ``LocationInfo(...)`` repr.

    A bad value in a file reads ``[section] option in FILE: reason``;
    ``section`` is looked up in the files when not given.
    """
    text = str(err)
    match = _LOCATED.match(text)
    if match is None:
        return _LOCATION.sub(lambda m: m.group('path'), text)
    option, path = match.group('option'), match.group('path')
    if section is None:
        section = _section_of(path, option) or '?'
    return '[%s] %s in %s: %s' % (section, option, path,
                                  match.group('reason'))


def _section_of(path: str, option: str) -> str | None:
    try:
        sections = parse(path)
    except (OSError, cfg.Error):
        return None
    wanted = _norm_option(option)
    for section, values in sections.items():
        if any(_norm_option(o) == wanted for o in values):
            return section
    return None
