"""The arrows of the architecture: what the product may import."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / 'heartbeat'


def imported(path):
    """The modules ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding='utf-8'))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from ('%s.%s' % (node.module, a.name) for a in node.names)


def product_modules():
    return sorted(p for p in ROOT.rglob('*.py')
                  if 'testing' not in p.relative_to(ROOT).parts)


@pytest.mark.parametrize('path', product_modules(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_product_never_imports_the_test_fixtures(path):
    bad = [name for name in imported(path)
           if name == 'heartbeat.testing'
           or name.startswith('heartbeat.testing.')]
    assert bad == [], path


def test_the_simulated_cluster_never_imports_the_commands():
    for path in sorted((ROOT / 'cluster').glob('*.py')):
        bad = [name for name in imported(path)
               if name == 'heartbeat.cmd' or name.startswith('heartbeat.cmd.')]
        assert bad == [], path
