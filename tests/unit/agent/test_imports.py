"""The agent talks to the world only through the broker client and the
workload launcher: it never imports a driver, storage code or sanlock."""

import json
import subprocess
import sys

FORBIDDEN = ('heartbeat.drivers', 'heartbeat.fencing', 'heartbeat.monitor',
             'heartbeat.broker.core', 'heartbeat.broker.writer',
             'heartbeat.broker.store', 'heartbeat.broker.connection',
             'heartbeat.servicegroup', 'sanlock', 'redis', 'tooz', 'kazoo')


def test_the_agent_imports_no_driver_storage_or_sanlock():
    code = ('import json, sys\n'
            'import heartbeat.cmd.agent, heartbeat.agent.service\n'
            'print(json.dumps(sorted(sys.modules)))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    modules = json.loads(out.strip().splitlines()[-1])
    assert 'heartbeat.agent.loop' in modules
    bad = [m for m in modules
           if any(m == f or m.startswith(f + '.') for f in FORBIDDEN)]
    assert bad == []
