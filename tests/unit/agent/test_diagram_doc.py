"""doc/agent-states.md is the diagram generated from the transition table."""

import os
import re

from heartbeat.agent import diagram

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc',
                   'agent-states.md')


def test_the_documented_diagram_is_the_generated_one():
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    block = re.search(r'```mermaid\n(.*?)```', text, re.S)
    assert block, 'no mermaid block in %s' % DOC
    assert block.group(1).strip() == diagram.mermaid().strip(), (
        'doc/agent-states.md is stale: regenerate it with python -m '
        'heartbeat.agent.diagram --format mermaid')
