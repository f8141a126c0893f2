"""Sphinx configuration of heartbeat's documentation (``tox -e docs``)."""

from importlib import metadata
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(HERE, '_exts'))

project = 'heartbeat'
author = 'heartbeat developers'
copyright = '%s' % author  # noqa: A001 -- the name Sphinx reads
try:
    release = metadata.version('heartbeat')
except metadata.PackageNotFoundError:
    release = 'unknown'
version = release

extensions = [
    'sphinx.ext.autodoc',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'reno.sphinxext',
    'heartbeat_docs',
]

master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_title = 'heartbeat %s' % release
pygments_style = 'sphinx'

# autodoc: members in source order, type hints in the description.
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_default_options = {'show-inheritance': True}

# oslo_config.sphinxconfiggen: the sample generated from the code at every
# build, from the same generator file as "tox -e genconfig", written
# outside the source tree (doc/build/_generated/heartbeat.conf.sample).
config_generator_config_file = [(
    os.path.join(ROOT, 'etc', 'heartbeat', 'heartbeat-config-generator.conf'),
    os.path.join('..', 'build', '_generated', 'heartbeat'))]


# One man page per console script (tests/unit/test_docs.py checks that
# every script of setup.cfg has one): (source, name, description,
# authors, section).  Daemons and administrative commands are section 8.
man_pages = [
    ('cli/heartbeat-broker', 'heartbeat-broker',
     'storage, monitoring and sanlock I/O of an HA host', [author], 8),
    ('cli/heartbeat-agent', 'heartbeat-agent',
     'decides where the protected workload runs', [author], 8),
    ('cli/heartbeat-member', 'heartbeat-member',
     'a standalone member that joins a group and reports', [author], 1),
    ('cli/heartbeat-status', 'heartbeat-status',
     'show the members of the groups, or what the local broker says',
     [author], 1),
    ('cli/heartbeat-storage', 'heartbeat-storage',
     'initialise, inspect and repair the shared metadata area', [author], 8),
    ('cli/heartbeat-maintenance', 'heartbeat-maintenance',
     'show or set local or global maintenance', [author], 8),
    ('cli/heartbeat-local-cluster', 'heartbeat-local-cluster',
     'simulated hosts on one machine with a live status', [author], 1),
]
man_show_urls = False
