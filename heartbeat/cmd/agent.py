"""heartbeat-agent: decides where the protected workload runs.

Run one beside heartbeat-broker on every host of the cluster.  Each loop it
asks the local broker for the cluster's status, lets its state machine
decide, starts, stops or leaves the workload, and posts its state and
score.  SIGTERM stops the agent and leaves the workload running (the next
agent adopts it); SIGHUP re-reads the config files in place.
"""

from __future__ import annotations

from collections.abc import Sequence
import sys

from heartbeat import cmd

PROG = 'heartbeat-agent'


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports oslo_service.loopingcall/service.
    cmd.init_backend()

    def body() -> int:
        from heartbeat.agent import service
        from heartbeat.service import launcher

        conf = cmd.make_conf(argv, [], __doc__ or '', check=False)
        service.register_opts(conf)
        cmd.check_config_files(conf)
        service.validate(conf)
        return launcher.launch(conf, service.AgentService(conf))

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
