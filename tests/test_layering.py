"""Layering: ``core`` imports no sibling package; the baseline imports neither the plug-ins nor the engine /
analysis / visualization leaves; the plug-ins and NYUv2 import no leaf.

The imports run in one fresh interpreter, layer by layer from the bottom, recording what each adds, so that nothing
the test session imported hides a dependency. mmdet and mmdet3d themselves load matplotlib and sklearn, so the
third-party modules the baseline uses are imported first and the check is that the plugin adds no matplotlib /
sklearn module on top of them.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = 'projects.nexusflow'
# what models/uniad imports from outside the plugin
UNIAD_THIRD_PARTY = ['numpy', 'scipy.optimize', 'torch', 'mmengine.model', 'mmengine.structures',
                     'mmcv.cnn.bricks.transformer', 'mmdet.models.layers', 'mmdet.models.task_modules.assigners',
                     'mmdet.structures.bbox', 'mmdet.utils', 'mmdet3d.registry', 'mmdet3d.structures']
LAYERS = ['core', 'models.uniad', 'models.nexusflow', 'models.psmtl', 'nyuv2']  # bottom first
LEAVES = [f'{PLUGIN}.engine', f'{PLUGIN}.analysis', f'{PLUGIN}.visualization']
SCRIPT = """
import importlib, json, sys
for name in {third_party!r}:
    importlib.import_module(name)
added = {{}}
for layer in {layers!r}:
    before = set(sys.modules)
    importlib.import_module('{plugin}.' + layer)
    added[layer] = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def forbidden(loaded, prefixes):
    return sorted(name for name in loaded if any(name == p or name.startswith(p + '.') for p in prefixes))


def test_layers_import_only_what_lies_below():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    script = SCRIPT.format(third_party=UNIAD_THIRD_PARTY, layers=LAYERS, plugin=PLUGIN)
    out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    added = json.loads(out.strip().splitlines()[-1])

    siblings = ('models', 'datasets', 'evaluation', 'engine', 'analysis', 'nyuv2', 'visualization')
    core_bad = forbidden(added['core'], [f'{PLUGIN}.{name}' for name in siblings])
    assert f'{PLUGIN}.core.taps' in added['core'] and not core_bad, f'core loaded {core_bad}'

    uniad = added['models.uniad']
    assert f'{PLUGIN}.models.uniad.detector' in uniad  # the check saw the baseline load
    uniad_bad = forbidden(uniad, [f'{PLUGIN}.models.nexusflow', f'{PLUGIN}.models.psmtl', f'{PLUGIN}.nyuv2',
                                  'matplotlib', 'sklearn'] + LEAVES)
    assert not uniad_bad, f'importing the baseline loaded {uniad_bad}'

    for layer in LAYERS[2:]:
        assert any(name.startswith(f'{PLUGIN}.{layer}') for name in added[layer])
        assert not forbidden(added[layer], LEAVES), f'{layer} loaded {forbidden(added[layer], LEAVES)}'


HEAVY = ['matplotlib', 'sklearn']
# Records who runs an import statement of matplotlib / sklearn (``builtins.__import__`` sees every statement, also
# when the module is already loaded, e.g. by mmdet), then imports the whole plugin.
IMPORTERS_SCRIPT = """
import builtins, json, sys
original = builtins.__import__
importers = set()
def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.split('.')[0] in {heavy!r}:
        importers.add((globals or {{}}).get('__name__', '?'))
    return original(name, globals, locals, fromlist, level)
builtins.__import__ = recording_import
import {module}
print(json.dumps(dict(importers=sorted(importers), loaded=[m for m in {heavy!r} if m in sys.modules])))
"""


def importers_of_heavy(module):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    script = IMPORTERS_SCRIPT.format(heavy=HEAVY, module=module)
    out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_package_import_loads_neither_matplotlib_nor_sklearn():
    assert importers_of_heavy(PLUGIN) == dict(importers=[], loaded=[])


def test_registration_runs_no_matplotlib_or_sklearn_import_of_its_own():
    """mmdet loads both; what is checked is that no module of the plugin imports them when it is imported."""
    found = importers_of_heavy(f'{PLUGIN}.registration')
    assert any(name.startswith('mmdet') for name in found['importers']), found  # the recording saw mmdet's
    assert not forbidden(found['importers'], [PLUGIN]), found
