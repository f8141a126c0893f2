"""heartbeat-broker: the daemon that does a host's storage, monitoring and
locking I/O and answers local callers over a unix socket.

SIGTERM stops it cleanly; SIGHUP re-reads the config files and applies the
mutable options in place (same process, lockspace, lease and slot); options
that need a restart are logged as such.
"""

from __future__ import annotations

from collections.abc import Sequence
import sys

from heartbeat import cmd

PROG = 'heartbeat-broker'


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports oslo_service.loopingcall/service.
    cmd.init_backend()

    def body() -> int:
        from heartbeat.broker import core
        from heartbeat.broker.service import BrokerService
        from heartbeat.service import launcher

        conf = cmd.make_conf(argv, [], __doc__ or '', check=False)
        core.register_opts(conf)
        cmd.check_config_files(conf)
        # Fail here, before the launcher forks, on what start() would
        # refuse; a refusal that only start() finds ends the daemon too.
        core.check_config(conf)
        return launcher.launch(conf, BrokerService(conf))

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
