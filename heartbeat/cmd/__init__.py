"""Console scripts.  Each main() selects the oslo.service backend first.

Conventions shared by every command: data on stdout, logs and errors on
stderr; exit status 0 (ok), 1 (what was checked is unhealthy) or 2 (usage,
configuration or backend error), said in every ``--help``; ``--version``;
each option's default in its help; errors in one line naming the program.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import contextlib
import copy
from importlib import metadata
import io
import os
import sys
import warnings

# The commands run on oslo.service's threading backend: eventlet is not
# used, so the deprecation notice its import prints (through futurist)
# says nothing to the user.  Real warnings still show.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from heartbeat import conf as hb_conf  # noqa: E402
from heartbeat.conf import check as conf_check  # noqa: E402
from heartbeat import exception  # noqa: E402

LOG = logging.getLogger(__name__)

#: Said at the end of every command's --help.
EXIT_STATUS = ('Exit status: 0 ok; 1 what was checked is unhealthy (a '
               'member down, the broker unhealthy, a damaged area); 2 usage, '
               'configuration or backend error.')

#: The program run() is running, for messages of make_conf().
_prog: list[str] = []


def version() -> str:
    """heartbeat's installed version."""
    try:
        return metadata.version('heartbeat')
    except metadata.PackageNotFoundError:
        return 'unknown'


def _with_default(opt: cfg.Opt) -> cfg.Opt:
    """A copy of ``opt`` whose help ends with its default."""
    if opt.default is None or isinstance(opt, cfg.SubCommandOpt) or (
            'default' in (opt.help or '').lower()):
        return opt
    shown = opt.default
    if isinstance(opt, cfg.BoolOpt):
        shown = 'true' if opt.default else 'false'
    elif isinstance(shown, (list, tuple)):
        shown = ','.join(str(v) for v in shown) or '(empty)'
    new = copy.copy(opt)
    new.help = '%s (default: %s)' % ((opt.help or '').rstrip(), shown)
    return new


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
    # Logs go to stderr, so stdout carries only the command's data.
    conf.set_default('use_stderr', True)
    conf.register_cli_opts([*(_with_default(o) for o in cli_opts),
                            STRICT_OPT])
    _parse(conf, list(sys.argv[1:] if argv is None else argv), description,
           _flags(cli_opts))
    # A plugin that cannot be loaded is said once, by our error.
    levels = [*conf.default_log_levels, 'stevedore=ERROR']
    if quiet and not conf.debug:
        # A command whose output is its data logs only what goes wrong,
        # unless --debug asks for everything (our errors say the rest).
        levels += ['heartbeat=WARNING', 'kazoo=ERROR']
    conf.set_override('default_log_levels', levels)
    logging.setup(conf, 'heartbeat')
    LOG.debug('heartbeat %s; config files: %s; driver %s.', version(),
              ', '.join(conf.config_file) or 'none',
              conf.heartbeat.driver)
    if check:
        check_config_files(conf)
    hb_conf.validate(conf)
    return conf


def _flags(cli_opts: Sequence[cfg.Opt]) -> set[str]:
    """The command-line flags of a command's own options."""
    flags = {'-h', '--help'}
    for opt in cli_opts:
        flags.add('--' + opt.name)
        if isinstance(opt, cfg.BoolOpt):
            flags.add('--no' + opt.name)
    return flags


def own_options_first(text: str, own: set[str]) -> str:
    """argparse help with the command's own options before the others.

    oslo.config sorts every option by name, so a command's few options are
    lost among oslo.log's; the others go to a section of their own after
    them.
    """
    lines = text.split('\n')
    try:
        start = lines.index('options:') + 1
    except ValueError:
        return text
    end = start
    while end < len(lines) and lines[end].startswith(' '):
        end += 1
    entries: list[list[str]] = []
    for line in lines[start:end]:
        if line.startswith('  -') or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    mine = [e for e in entries if e[0].split()[0].rstrip(',') in own]
    rest = [e for e in entries if e not in mine]
    if not mine or not any(e[0].split()[0] == '--config-dir'
                           for e in rest):
        return text   # not the top-level help (a sub-command's, say)
    body = [line for e in mine for line in e]
    body += ['', 'configuration and logging options:']
    body += [line for e in rest for line in e]
    return '\n'.join(lines[:start] + body + lines[end:])


def _parse(conf: cfg.ConfigOpts, args: list[str], description: str,
           own: set[str] | None = None) -> None:
    """Parse ``args``; bad values and unreadable files in one line, rc 2.

    oslo.config reports a bad command-line value on stderr and exits 1,
    without the program's name: that is caught here and said the way
    argparse says usage errors.  ``--help`` lists the ``own`` flags first.
    """
    prog = _prog[-1] if _prog else os.path.basename(sys.argv[0])
    captured = io.StringIO()
    helped = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), \
                contextlib.redirect_stdout(helped):
            conf(args, project='heartbeat', prog=prog,
                 version=version(), description=description,
                 epilog=EXIT_STATUS)
    except SystemExit as exc:
        sys.stdout.write(own_options_first(helped.getvalue(), own or set()))
        sys.stdout.flush()
        text = captured.getvalue()
        if exc.code == 1 and text.startswith('argument --'):
            name, _, rest = text[len('argument --'):].partition(':')
            sys.stderr.write('%s: error: argument --%s:%s'
                             % (prog, name.replace('_', '-'), rest))
            raise SystemExit(2) from None
        sys.stderr.write(text)
        raise
    except OSError as err:
        sys.stdout.write(helped.getvalue())
        sys.stderr.write(captured.getvalue())
        raise exception.ConfigError(
            'Cannot read config file %s: %s'
            % (err.filename, err.strerror or err)) from err
    sys.stdout.write(helped.getvalue())
    sys.stderr.write(captured.getvalue())


def check_config_files(conf: cfg.ConfigOpts) -> None:
    """Warn about unknown options and sections; refuse bad values.

    Call it once every option of the command is registered.  With
    ``--strict-config`` unknown names are refused too
    (:class:`~heartbeat.exception.ConfigError`, one line).
    """
    conf_check.check_values(conf)
    conf_check.check_files(conf, strict=conf.strict_config)


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the first row is the header.

    Drawn by prettytable, as OpenStack's command-line clients do, without
    borders so that the output stays easy to grep and cut.
    """
    import prettytable

    table = prettytable.PrettyTable(list(rows[0]))
    table.add_rows([list(r) for r in rows[1:]])
    table.align = 'l'
    table.border = False
    table.left_padding_width = 0
    table.right_padding_width = 2
    return '\n'.join(line.rstrip()
                     for line in table.get_string().splitlines())


def run(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; turn HeartbeatError into a one-line message and exit 2."""
    _prog.append(prog)
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
    finally:
        _prog.pop()
