"""Registry names: every name the plugin registers is namespaced (``UniAD...`` for the baseline's model parts,
``NexusFlow...`` / ``nexusflow_...`` for the rest), so another BEVFormer / UniAD port registering the generic class
names (``BEVFormerEncoder``, ``TemporalSelfAttention``, ``GridMask``, ...) in the same process does not clash."""
import json
import os
import subprocess
import sys

import mmdet3d.registry
import mmengine.registry
from mmengine.registry import Registry

import projects.nexusflow.registration  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIXES = ('UniAD', 'NexusFlow', 'nexusflow_')
TINY_CONFIG = 'configs/uniad_nexusflow/tiny_nexusflow_onephase_sgeo.py'
# the generic names other BEVFormer ports register (the plugin used them before they were prefixed)
BEVFORMER_NAMES = {'BEVFormerEncoder', 'BEVFormerLayer', 'TemporalSelfAttention', 'SpatialCrossAttention',
                   'MSDeformableAttention3D', 'GridMask'}

# Registers a dummy under every generic name first, as another plugin imported before this one would, then imports
# the plugin and builds the tiny model, its training pipeline and its hooks.
SCRIPT = """
import importlib, json, sys
from mmengine.config import Config
from mmengine.registry import init_default_scope

class Dummy:
    pass

for module, attr, name in json.loads(sys.argv[1]):
    getattr(importlib.import_module(module), attr).register_module(name, module=Dummy)
import projects.nexusflow.registration  # noqa: F401
from mmdet3d.registry import HOOKS, MODELS, TRANSFORMS
init_default_scope('mmdet3d')
cfg = Config.fromfile(sys.argv[2])
model = MODELS.build(cfg.model)
steps = [TRANSFORMS.build(step) for step in cfg.train_pipeline]
hooks = [HOOKS.build(hook) for hook in cfg.get('custom_hooks', [])]
print(json.dumps(dict(model=type(model).__name__, plugins=[type(p).__name__ for p in model.plugins],
                      steps=[type(s).__name__ for s in steps], dummies=[type(m).__name__ for m in model.modules()
                                                                         if isinstance(m, Dummy)])))
"""


def plugin_registrations():
    """``(module, registry attribute, registered name, object)`` of everything the plugin registered."""
    found = []
    for module in (mmdet3d.registry, mmengine.registry):
        for attr, registry in sorted(vars(module).items()):
            if not isinstance(registry, Registry):
                continue
            for name, obj in registry.module_dict.items():
                if getattr(obj, '__module__', '').startswith('projects.nexusflow'):
                    found.append((module.__name__, attr, name, obj))
    return found


def test_every_registered_name_is_namespaced():
    found = plugin_registrations()
    assert len(found) > 50, 'the registration registered fewer modules than expected'
    generic = sorted(f'{attr}: {name}' for _, attr, name, _ in found if not name.startswith(PREFIXES))
    assert not generic, f'register these under a UniAD / NexusFlow name: {generic}'


def test_generic_names_registered_first_do_not_clash():
    generic = sorted({(module, attr, obj.__name__) for module, attr, name, obj in plugin_registrations()
                      if obj.__name__ != name})
    assert BEVFORMER_NAMES <= {name for _, attr, name in generic if attr == 'MODELS'}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(generic), TINY_CONFIG], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    assert built['model'] == 'UniADTrackMap' and built['plugins'] == ['NexusFlow'], built
    assert 'LoadMultiViewImages' in built['steps'] and not built['dummies'], built
