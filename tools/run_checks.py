"""Checks that tools/train.py and tools/test.py run before building the Runner: no setting silently ignored, no
checkpoint silently overwritten, no unreadable checkpoint discovered after hours.

``check_overrides``: a config's top-level variables (``geo_split``, ``lr``, ``max_epochs``, ``data_root``, ...) are
substituted into the settings that use them when the file is parsed, so ``--cfg-options lr=1e-4`` would change
nothing but the dumped config. Overrides must address a setting the Runner reads (``optim_wrapper.optimizer.lr``);
any other top-level key is refused with the settings that hold (or derive from) its value, and, for a variable the
config reads from the environment (``data_root = '{{$DATA_ROOT:data/nuscenes/}}'``), with that environment variable,
which does take effect (mmengine substitutes it when the file is parsed).

``prepare_work_dir``: a new run in a work dir that holds checkpoints of an earlier run is refused unless it resumes
(``--resume``) or ``--overwrite`` asks to delete them first.
"""
import glob
import inspect
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from projects.nexusflow.engine import missing_load_from_error
from projects.nexusflow.evaluation.checkpoint_check import check_checkpoint_file

__all__ = ['ConfigOverrideError', 'WorkDirError', 'check_overrides', 'prepare_work_dir', 'checkpoint_to_load']

# top-level keys read by Runner.from_cfg / the tools besides the Runner.__init__ arguments
EXTRA_RUNNER_KEYS = {'runner_type', 'custom_imports', 'model_wrapper_cfg', 'find_unused_parameters', 'launcher',
                     'work_dir', 'resume', 'load_from', 'auto_scale_lr', 'compile', 'strategy', 'cfg'}
HINTS = {'geo_split': 'train_dataloader.dataset.split (standard | reversed | full), or start from the '
                      '*_sgeo.py / *_rgeo.py config'}


class ConfigOverrideError(KeyError):
    """A --cfg-options key that would be ignored."""

    def __str__(self) -> str:
        return str(self.args[0])


class WorkDirError(FileExistsError):
    """The work dir holds checkpoints of an earlier run."""


def runner_keys() -> set:
    """Top-level config keys that take effect (arguments of ``Runner.__init__`` plus ``EXTRA_RUNNER_KEYS``)."""
    return (set(inspect.signature(Runner.__init__).parameters) - {'self'}) | EXTRA_RUNNER_KEYS


def _leaves(node, prefix: str = '') -> Iterator[Tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(node, (list, tuple)):
        for idx, value in enumerate(node):
            yield from _leaves(value, f'{prefix}.{idx}')
    else:
        yield prefix, node


def derived_settings(cfg: Config, value) -> List[str]:
    """Dotted keys of the effective settings whose value equals ``value`` (or, for a string, contains it)."""
    if isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
        return []
    keys = runner_keys()
    settings = {top: node for top, node in cfg.to_dict().items() if top in keys}
    found = []
    for path, leaf in _leaves(settings):
        same = type(leaf) is type(value) and leaf == value
        if same or (isinstance(value, str) and isinstance(leaf, str) and value and value in leaf):
            found.append(path)
    return found


def env_variable_of(cfg: Config, top: str) -> Optional[str]:
    """The environment variable a top-level variable is read from (``top = '{{$NAME:default}}'`` in the config
    files, mmengine's substitution), or None."""
    match = re.search(r'^' + re.escape(top) + r'\s*=\s*[\'"]?\{\{[\'"]?\s*\$(\w+)\s*:', cfg.text or '', re.MULTILINE)
    return match.group(1) if match else None


def check_overrides(cfg: Config, options: Optional[Dict[str, object]]) -> None:
    """Refuse ``--cfg-options`` keys that address no setting the run reads (see the module docstring).

    Args:
        cfg: the config as parsed, before the overrides are merged.
        options: the ``--cfg-options`` dict (``DictAction`` output), or None.

    Raises:
        ConfigOverrideError: naming each refused key and the settings to change instead.
    """
    keys = runner_keys()
    problems = []
    for key, value in (options or {}).items():
        option = f'{key}={value}'
        top = key.split('.')[0]
        if top in keys:
            continue
        if top not in cfg:
            problems.append(f'{option}: {top!r} is not a setting of this config; top-level settings that take '
                            f'effect: {sorted(k for k in cfg.keys() if k in keys)}')
            continue
        old = cfg[top]
        derived = derived_settings(cfg, old)
        use = HINTS.get(top) or (', '.join(derived) if derived else
                                 f'none of the settings holds its value {old!r} any more; find the one you mean '
                                 f'in the dumped config')
        env = env_variable_of(cfg, top)
        if env is not None:
            use = (f'{use}; or set the environment variable the config reads it from, which moves all of them: '
                   f'{env}={value} python tools/<train|test>.py ...')
        problems.append(f'{option}: {top!r} is a variable of the config file ({top} = {old!r}), substituted into '
                        f'the settings that use it when the file was parsed, so overriding it would change nothing '
                        f'but the dumped config. Override the settings themselves: {use}')
    if problems:
        raise ConfigOverrideError('--cfg-options refused:\n  ' + '\n  '.join(problems))


def _checkpoints(work_dir: str) -> List[str]:
    return sorted(glob.glob(osp.join(work_dir, '*.pth')) + glob.glob(osp.join(work_dir, '.*.pth.tmp')) +
                  glob.glob(osp.join(work_dir, 'last_checkpoint')))


def prepare_work_dir(work_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) a work dir holding checkpoints when the run does not resume.

    Raises:
        WorkDirError: checkpoints present, ``resume`` and ``overwrite`` both False.
        ValueError: ``resume`` and ``overwrite`` both True.
    """
    if resume and overwrite:
        raise ValueError('--resume continues the run in the work dir and --overwrite deletes its checkpoints: '
                         'pass one of them')
    found = _checkpoints(work_dir)
    if resume or not found:
        return
    names = [osp.basename(path) for path in found]
    if not overwrite:
        raise WorkDirError(f'work dir {work_dir} already holds checkpoints of an earlier run ({names}); a new run '
                           f'would overwrite them. Pass --resume to continue that run, --work-dir to train into '
                           f'another folder, or --overwrite to delete them first.')
    if int(os.environ.get('RANK', '0')) == 0:
        for path in found:
            os.remove(path)
        print_log(f'--overwrite: deleted {names} from {work_dir}', logger='current')


def checkpoint_to_load(cfg: Config) -> Optional[str]:
    """The local checkpoint the run will load (``load_from``, or the work dir's latest for ``--resume`` without a
    path), checked for completeness with ``check_checkpoint_file``; None when there is none."""
    path = cfg.get('load_from', None)
    if path is None and cfg.get('resume', False):
        marker = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(marker):
            with open(marker) as f:
                path = f.read().strip()
    if path is None or '://' in path:
        return path
    if not osp.isfile(path) and path == cfg.get('load_from', None):
        raise missing_load_from_error(path)
    check_checkpoint_file(path)
    return path
