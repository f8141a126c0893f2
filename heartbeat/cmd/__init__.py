"""Console scripts.  Each main() selects the oslo.service backend first."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import sys

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import conf as hb_conf
from heartbeat.conf import check as conf_check
from heartbeat import exception

#: Every command takes it: unknown config options end it instead of a
#: warning.
STRICT_OPT = cfg.BoolOpt(
    'strict-config', default=False,
    help='Refuse to start (exit code 2) when a config file has an option '
         'or a section that nothing reads, such as a misspelt name; '
         'without it they are logged as warnings and ignored.')


def init_backend() -> None:
    """Select the threading backend before anything imports loopingcall."""
    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)


def make_conf(argv: Sequence[str] | None, cli_opts: Sequence[cfg.Opt],
              description: str, quiet: bool = False,
              check: bool = True) -> cfg.ConfigOpts:
    """Parse ``argv`` and the config files into a new ConfigOpts.

    With ``check``, the config files are checked at once (see
    :func:`check_config_files`); a command that registers more options
    afterwards passes ``check=False`` and calls it itself once they are
    registered.
    """
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    logging.register_options(conf)
    if quiet:
        levels = [*logging.get_default_log_levels(), 'heartbeat=WARNING']
        logging.set_defaults(default_log_levels=levels)
    conf.register_cli_opts([*cli_opts, STRICT_OPT])
    conf(list(sys.argv[1:] if argv is None else argv), project='heartbeat',
         description=description)
    logging.setup(conf, 'heartbeat')
    if check:
        check_config_files(conf)
    hb_conf.validate(conf)
    return conf


def check_config_files(conf: cfg.ConfigOpts) -> None:
    """Warn about unknown options and sections; refuse bad values.

    Call it once every option of the command is registered.  With
    ``--strict-config`` unknown names are refused too
    (:class:`~heartbeat.exception.ConfigError`, one line).
    """
    conf_check.check_values(conf)
    conf_check.check_files(conf, strict=conf.strict_config)


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join(
        '  '.join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows)


def run(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; turn HeartbeatError into a one-line message and exit 2."""
    try:
        return body() or 0
    except exception.HeartbeatError as err:
        print('%s: error: %s' % (prog, err), file=sys.stderr)
        return 2
    except cfg.Error as err:
        print('%s: error: %s' % (prog, conf_check.describe(err)),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
